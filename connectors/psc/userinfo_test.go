package psc

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/garde-sso/garde/connectors/psc/psctest"
)

// sample is ANS's BAS userinfo sample (reference.md §1.7), verbatim.
const sample = `{
  "Secteur_Activite": "SA07^1.2.250.1.71.4.2.4",
  "sub": "f:550dc1c8-d97b-4b1e-ac8c-8eb4471cf9dd:899700427885",
  "SubjectOrganization": "CABINET M DOC0042788",
  "Mode_Acces_Raison": "",
  "preferred_username": "899700427885",
  "given_name": "KIT",
  "Acces_Regulation_Medicale": "FAUX",
  "UITVersion": "1.0",
  "authMode": "CARD",
  "Palier_Authentification": "APPPRIP3^1.2.250.1.213.1.5.1.1.1",
  "SubjectRefPro": {
    "codeCivilite": "M",
    "exercices": [{
      "codeProfession": "10",
      "codeCategorieProfessionnelle": "C",
      "codeCiviliteDexercice": "DR",
      "nomDexercice": "DOC0042788",
      "prenomDexercice": "KIT",
      "codeTypeSavoirFaire": "S",
      "codeSavoirFaire": "SM26",
      "activities": [{
        "codeModeExercice": "S",
        "codeSecteurDactivite": "SA01",
        "codeSectionPharmacien": "", "codeRole": "", "codeGenreActivite": "",
        "numeroSiretSite": "", "numeroSirenSite": "",
        "numeroFinessSite": "0B0193488",
        "numeroFinessetablissementJuridique": "1B0064166",
        "identifiantTechniqueDeLaStructure": "F0B0193488",
        "raisonSocialeSite": "HOPITAL GENERIQUE  FIN VARI",
        "enseigneCommercialeSite": "", "complementDestinataire": "", "complementPointGeographique": "",
        "numeroVoie": "10", "indiceRepetitionVoie": "", "codeTypeDeVoie": "R", "libelleVoie": "DE PARIS",
        "mentionDistribution": "", "bureauCedex": "PARIS", "codePostal": "75009", "codeCommune": "", "codePays": "",
        "telephone": "", "telephone2": "", "telecopie": "", "adresseEMail": "", "codeDepartement": "",
        "ancienIdentifiantDeLaStructure": "10B0193488",
        "autoriteDenregistrement": "CNOM/CNOM/ARS"
      }]
    }]
  },
  "SubjectOrganizationID": "R102671",
  "SubjectRole": ["10^1.2.250.1.213.1.1.5.5"],
  "PSI_Locale": "1.2.250.1.213.1.3.1.1",
  "otherIds": [{"identifiant": "899700427885", "origine": "RPPS", "qualite": 1}],
  "SubjectNameID": "899700427885",
  "family_name": "DOC0042788"
}`

func TestParseUserinfo(t *testing.T) {
	cases := []struct {
		name  string
		json  string
		check func(t *testing.T, u *userinfoClaims)
	}{
		{"ANS sample", sample, func(t *testing.T, u *userinfoClaims) {
			if u.nationalID() != "899700427885" || u.AuthMode != "CARD" || u.GivenName != "KIT" || u.FamilyName != "DOC0042788" {
				t.Errorf("%+v", u)
			}
			ex := u.SubjectRefPro.Exercices
			if len(ex) != 1 || ex[0].CodeProfession != "10" || ex[0].CodeSavoirFaire != "SM26" || len(ex[0].Activities) != 1 ||
				ex[0].Activities[0].NumeroFinessetablissementJuridique != "1B0064166" {
				t.Errorf("exercices %+v", ex)
			}
			if len(u.OtherIDs) != 1 || u.OtherIDs[0].Qualite != "1" || u.OtherIDs[0].Origine != "RPPS" {
				t.Errorf("otherIds %+v", u.OtherIDs)
			}
			if !slices.Equal(u.SubjectRole, []string{"10^1.2.250.1.213.1.1.5.5"}) {
				t.Errorf("SubjectRole %v", u.SubjectRole)
			}
		}},
		{"the simulator's default matches the sample", mustJSON(psctest.DefaultUser().UserinfoClaims()), func(t *testing.T, u *userinfoClaims) {
			want, _ := parseUserinfo([]byte(sample))
			u.SubjectRefPro.Exercices[0].Activities[0].NumeroFinessSite = want.SubjectRefPro.Exercices[0].Activities[0].NumeroFinessSite
			if u.nationalID() != want.nationalID() || u.Sub != want.Sub || len(u.SubjectRefPro.Exercices) != 1 {
				t.Errorf("%+v", u)
			}
		}},
		{"otherIDs spelling", `{"SubjectNameID":"899700427885","otherIDs":[{"identifiant":"899700427885","origine":"RPPS","qualite":"1"}]}`, func(t *testing.T, u *userinfoClaims) {
			if len(u.OtherIDs) != 1 || u.OtherIDs[0].Qualite != "1" {
				t.Errorf("otherIDs %+v", u.OtherIDs)
			}
		}},
		{"fallback to preferred_username", `{"SubjectNameID":"","preferred_username":"ANS20231122132732"}`, func(t *testing.T, u *userinfoClaims) {
			if u.nationalID() != "ANS20231122132732" {
				t.Errorf("id %q", u.nationalID())
			}
		}},
		{"missing activities and exercices", `{"SubjectNameID":"0123456789","SubjectRefPro":{"codeCivilite":"M","exercices":[{"codeProfession":"21"}]}}`, func(t *testing.T, u *userinfoClaims) {
			if len(u.SubjectRefPro.Exercices) != 1 || u.SubjectRefPro.Exercices[0].Activities != nil {
				t.Errorf("%+v", u.SubjectRefPro)
			}
		}},
		{"null lists and objects", `{"SubjectNameID":"899700427885","SubjectRefPro":null,"otherIds":null,"SubjectRole":null}`, func(t *testing.T, u *userinfoClaims) {
			if u.SubjectRefPro.Exercices != nil || u.OtherIDs != nil || u.SubjectRole != nil {
				t.Errorf("%+v", u)
			}
		}},
		{"numbers for strings", `{"SubjectNameID":899700427885,"SubjectRefPro":{"exercices":[{"codeProfession":10,"activities":[{"numeroFinessSite":750000001}]}]}}`, func(t *testing.T, u *userinfoClaims) {
			if u.nationalID() != "899700427885" || u.SubjectRefPro.Exercices[0].CodeProfession != "10" || u.SubjectRefPro.Exercices[0].Activities[0].NumeroFinessSite != "750000001" {
				t.Errorf("%+v", u)
			}
		}},
		{"single object for a list, string for a role list", `{"SubjectNameID":"8","otherIds":{"identifiant":"8","origine":"RPPS"},"SubjectRole":"10^x"}`, func(t *testing.T, u *userinfoClaims) {
			if len(u.OtherIDs) != 1 || !slices.Equal(u.SubjectRole, []string{"10^x"}) {
				t.Errorf("%+v", u)
			}
		}},
		{"empty string for a list", `{"SubjectNameID":"8","otherIds":"","SubjectRefPro":{"exercices":""}}`, func(t *testing.T, u *userinfoClaims) {
			if u.OtherIDs != nil || u.SubjectRefPro.Exercices != nil {
				t.Errorf("%+v", u)
			}
		}},
		{"unknown claims are ignored", `{"SubjectNameID":"8","codeCivilite":"M","codeGenreActivite":"GENR01","new_claim":{"x":[1,2]}}`, func(t *testing.T, u *userinfoClaims) {
			if u.nationalID() != "8" {
				t.Errorf("%+v", u)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := parseUserinfo([]byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, u)
		})
	}
	for _, bad := range []string{``, `[]`, `"x"`, `{"SubjectNameID":{"a":1}}`, `{"otherIds":42}`, `{"SubjectRefPro":{"exercices":[1]}}`, `{`} {
		if _, err := parseUserinfo([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// FuzzParseUserinfo: any input decodes or fails with an error; a decoded
// userinfo maps to an identity or to ErrNoSubject, without panicking.
func FuzzParseUserinfo(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte(`{"SubjectNameID":899700427885,"otherIDs":{"qualite":1},"SubjectRole":"x"}`))
	f.Add([]byte(`{"SubjectRefPro":{"exercices":[{"activities":null}]}}`))
	f.Add([]byte(`{"SubjectRefPro":{"exercices":""},"otherIds":""}`))
	f.Add([]byte(`{"sub":null,"authMode":true}`))
	f.Add([]byte(`[]`))
	c := &Connector{id: "psc", rules: DefaultAssurance(), now: time.Now}
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := parseUserinfo(b)
		if err != nil {
			return
		}
		v := &verified{token: &oidc.IDToken{Subject: string(u.Sub)}}
		id, err := c.identity(v, u)
		if err == nil && (id.Subject == "" || strings.TrimSpace(id.Subject) != id.Subject) {
			t.Fatalf("bad subject %q from %s", id.Subject, b)
		}
	})
}
