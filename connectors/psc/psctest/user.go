package psctest

import (
	"crypto/rand"
	"encoding/hex"
	"maps"
)

// User is the professional the simulator signs in.
type User struct {
	// IDNat is the idNat_PS: SubjectNameID and preferred_username.
	IDNat      string
	GivenName  string
	FamilyName string
	// AuthMode is CARD or MOBILE (the e-CPS app).
	AuthMode string
	// ProfessionCode, Category and SavoirFaire describe the one exercice.
	ProfessionCode string
	Category       string
	SavoirFaire    string
	// FinessSite, FinessLegal and SiteName describe its one activity.
	FinessSite  string
	FinessLegal string
	SiteName    string
	// Userinfo, when set, replaces the generated userinfo claims
	// entirely (sub is still set unless present): for odd payloads.
	Userinfo map[string]any
	// Extra claims are merged over the generated userinfo.
	Extra map[string]any
}

// keycloakFederationID is the user-storage component id of PSC's realm in
// ANS's BAS samples; sub is "f:<it>:<idNat>".
const keycloakFederationID = "550dc1c8-d97b-4b1e-ac8c-8eb4471cf9dd"

// DefaultUser is the doctor of ANS's BAS userinfo sample: KIT
// DOC0042788, RPPS 99700427885, signed in with a CPS card.
func DefaultUser() User {
	return User{
		IDNat:          "899700427885",
		GivenName:      "KIT",
		FamilyName:     "DOC0042788",
		AuthMode:       "CARD",
		ProfessionCode: "10",
		Category:       "C",
		SavoirFaire:    "SM26",
		FinessSite:     "0B0193488",
		FinessLegal:    "1B0064166",
		SiteName:       "HOPITAL GENERIQUE  FIN VARI",
	}
}

// Sub is the Keycloak federated id PSC puts in sub.
func (u User) Sub() string { return "f:" + keycloakFederationID + ":" + u.IDNat }

// UserinfoClaims returns the userinfo claims PSC would send for u, shaped
// like ANS's BAS sample (empty strings for absent values included).
func (u User) UserinfoClaims() map[string]any {
	if u.Userinfo != nil {
		c := maps.Clone(u.Userinfo)
		if _, ok := c["sub"]; !ok {
			c["sub"] = u.Sub()
		}
		return c
	}
	activity := map[string]any{
		"codeModeExercice": "S", "codeSecteurDactivite": "SA01",
		"codeSectionPharmacien": "", "codeRole": "", "codeGenreActivite": "",
		"numeroSiretSite": "", "numeroSirenSite": "",
		"numeroFinessSite":                   u.FinessSite,
		"numeroFinessetablissementJuridique": u.FinessLegal,
		"identifiantTechniqueDeLaStructure":  "F" + u.FinessSite,
		"raisonSocialeSite":                  u.SiteName,
		"enseigneCommercialeSite":            "", "complementDestinataire": "", "complementPointGeographique": "",
		"numeroVoie": "10", "indiceRepetitionVoie": "", "codeTypeDeVoie": "R", "libelleVoie": "DE PARIS",
		"mentionDistribution": "", "bureauCedex": "PARIS", "codePostal": "75009", "codeCommune": "", "codePays": "",
		"telephone": "", "telephone2": "", "telecopie": "", "adresseEMail": "", "codeDepartement": "",
		"ancienIdentifiantDeLaStructure": "1" + u.FinessSite,
		"autoriteDenregistrement":        "CNOM/CNOM/ARS",
	}
	c := map[string]any{
		"Secteur_Activite":          "SA07^1.2.250.1.71.4.2.4",
		"sub":                       u.Sub(),
		"SubjectOrganization":       "CABINET M " + u.FamilyName,
		"Mode_Acces_Raison":         "",
		"preferred_username":        u.IDNat,
		"given_name":                u.GivenName,
		"Acces_Regulation_Medicale": "FAUX",
		"UITVersion":                "1.0",
		"authMode":                  u.AuthMode,
		"Palier_Authentification":   "APPPRIP3^1.2.250.1.213.1.5.1.1.1",
		"SubjectRefPro": map[string]any{
			"codeCivilite": "M",
			"exercices": []any{map[string]any{
				"codeProfession":               u.ProfessionCode,
				"codeCategorieProfessionnelle": u.Category,
				"codeCiviliteDexercice":        "DR",
				"nomDexercice":                 u.FamilyName,
				"prenomDexercice":              u.GivenName,
				"codeTypeSavoirFaire":          "S",
				"codeSavoirFaire":              u.SavoirFaire,
				"activities":                   []any{activity},
			}},
		},
		"SubjectOrganizationID": "R102671",
		"SubjectRole":           []any{u.ProfessionCode + "^1.2.250.1.213.1.1.5.5"},
		"PSI_Locale":            "1.2.250.1.213.1.3.1.1",
		"otherIds":              []any{map[string]any{"identifiant": u.IDNat, "origine": "RPPS", "qualite": 1}},
		"SubjectNameID":         u.IDNat,
		"family_name":           u.FamilyName,
	}
	maps.Copy(c, u.Extra)
	return c
}

func randomID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b)
}

// uuid returns a random version-4 UUID string (Keycloak's session ids).
func uuid() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
