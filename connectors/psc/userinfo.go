package psc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// userinfoClaims is what Garde reads from PSC's userinfo response. Decoding is
// permissive because PSC's payloads vary between environments and years:
// key case differs (otherIds / otherIDs; encoding/json matches keys
// case-insensitively), absent values are empty strings, lists may be
// missing or null, and scalars may be numbers or strings.
type userinfoClaims struct {
	Sub                 flexString   `json:"sub"`
	SubjectNameID       flexString   `json:"SubjectNameID"`
	PreferredUsername   flexString   `json:"preferred_username"`
	GivenName           flexString   `json:"given_name"`
	FamilyName          flexString   `json:"family_name"`
	Email               flexString   `json:"email"`
	AuthMode            flexString   `json:"authMode"`
	SubjectRefPro       refPro       `json:"SubjectRefPro"`
	SubjectRole         flexStrings  `json:"SubjectRole"`
	SubjectOrganization flexString   `json:"SubjectOrganization"`
	SecteurActivite     flexString   `json:"Secteur_Activite"`
	ModeAccesRaison     flexString   `json:"Mode_Acces_Raison"`
	OtherIDs            flexList[id] `json:"otherIds"`
}

type refPro struct {
	CodeCivilite flexString         `json:"codeCivilite"`
	Exercices    flexList[exercice] `json:"exercices"`
}

type exercice struct {
	CodeProfession  flexString         `json:"codeProfession"`
	CodeCategorie   flexString         `json:"codeCategorieProfessionnelle"`
	CodeSavoirFaire flexString         `json:"codeSavoirFaire"`
	NomDexercice    flexString         `json:"nomDexercice"`
	PrenomDexercice flexString         `json:"prenomDexercice"`
	Activities      flexList[activity] `json:"activities"`
}

type activity struct {
	CodeModeExercice                   flexString `json:"codeModeExercice"`
	CodeRole                           flexString `json:"codeRole"`
	NumeroFinessSite                   flexString `json:"numeroFinessSite"`
	NumeroFinessetablissementJuridique flexString `json:"numeroFinessetablissementJuridique"`
	RaisonSocialeSite                  flexString `json:"raisonSocialeSite"`
}

type id struct {
	Identifiant flexString `json:"identifiant"`
	Origine     flexString `json:"origine"`
	Qualite     flexString `json:"qualite"`
}

// flexString accepts a string, a number, a boolean or null.
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*s = ""
	case b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = flexString(v)
	case string(b) == "true" || string(b) == "false":
		*s = flexString(b)
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*s = flexString(n.String())
	default:
		return fmt.Errorf("expected a string or a number, got %s", jsonKind(b))
	}
	return nil
}

// flexStrings accepts a list of scalars, a single scalar or null.
type flexStrings []string

func (l *flexStrings) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var items []flexString
		if err := json.Unmarshal(b, &items); err != nil {
			return err
		}
		*l = nil
		for _, it := range items {
			if it != "" {
				*l = append(*l, string(it))
			}
		}
		return nil
	}
	var one flexString
	if err := one.UnmarshalJSON(b); err != nil {
		return err
	}
	*l = nil
	if one != "" {
		*l = flexStrings{string(one)}
	}
	return nil
}

// flexList accepts a list of objects, a single object, or null.
type flexList[T any] []T

func (l *flexList[T]) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*l = nil
		return nil
	case b[0] == '[':
		var items []T
		if err := json.Unmarshal(b, &items); err != nil {
			return err
		}
		*l = items
		return nil
	case b[0] == '{':
		var one T
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*l = flexList[T]{one}
		return nil
	case string(b) == `""`:
		// An empty string for an absent list, as PSC does for scalars.
		*l = nil
		return nil
	}
	return fmt.Errorf("expected a list, got %s", jsonKind(b))
}

func jsonKind(b []byte) string {
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	}
	if _, err := strconv.ParseFloat(string(b), 64); err == nil {
		return "a number"
	}
	return "invalid JSON"
}

// parseUserinfo decodes a userinfo JSON object permissively.
func parseUserinfo(b []byte) (*userinfoClaims, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil, fmt.Errorf("userinfo is not a JSON object")
	}
	var u userinfoClaims
	if err := json.Unmarshal(b, &u); err != nil {
		return nil, fmt.Errorf("userinfo: %w", err)
	}
	return &u, nil
}

// nationalID is the person's idNat_PS: SubjectNameID, else
// preferred_username (equal in every sample). Never sub: it is Keycloak's
// federated id "f:<uuid>:<idNat>", and the uuid is PSC's business.
func (u *userinfoClaims) nationalID() string {
	if s := strings.TrimSpace(string(u.SubjectNameID)); s != "" {
		return s
	}
	return strings.TrimSpace(string(u.PreferredUsername))
}
