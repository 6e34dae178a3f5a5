package saml

import (
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"time"

	crewjam "github.com/crewjam/saml"
)

// metadataValidity is how long a copy of the IdP metadata stays valid
// (validUntil); SPs should fetch it again before then.
const metadataValidity = 7 * 24 * time.Hour

// Metadata returns the IdP's EntityDescriptor: entity id, the SSO
// endpoints for both bindings, the SLO endpoint, the signing certificate
// and the NameID formats its SPs are configured for.
func (p *IdP) Metadata() *crewjam.EntityDescriptor {
	cert := base64.StdEncoding.EncodeToString(p.o.Certificate.Raw)
	key := func(use string) crewjam.KeyDescriptor {
		return crewjam.KeyDescriptor{Use: use, KeyInfo: crewjam.KeyInfo{X509Data: crewjam.X509Data{
			X509Certificates: []crewjam.X509Certificate{{Data: cert}},
		}}}
	}
	formats := []crewjam.NameIDFormat{}
	seen := map[string]bool{}
	for _, s := range p.order {
		if f := FormatOf(s.NameID); !seen[f] {
			seen[f] = true
			formats = append(formats, crewjam.NameIDFormat(f))
		}
	}
	if len(formats) == 0 {
		formats = append(formats, FormatPersistent, FormatTransient)
	}
	wantSigned := false
	return &crewjam.EntityDescriptor{
		EntityID:   p.entityID,
		ValidUntil: p.now().UTC().Add(metadataValidity),
		IDPSSODescriptors: []crewjam.IDPSSODescriptor{{
			SSODescriptor: crewjam.SSODescriptor{
				RoleDescriptor: crewjam.RoleDescriptor{
					ProtocolSupportEnumeration: "urn:oasis:names:tc:SAML:2.0:protocol",
					// The same key signs and (for SPs that encrypt to the
					// IdP) would decrypt: "signing" only, Garde decrypts
					// nothing.
					KeyDescriptors: []crewjam.KeyDescriptor{key("signing")},
				},
				SingleLogoutServices: []crewjam.Endpoint{
					{Binding: BindingRedirect, Location: p.url(PathSLO)},
					{Binding: BindingPOST, Location: p.url(PathSLO)},
				},
				NameIDFormats: formats,
			},
			WantAuthnRequestsSigned: &wantSigned,
			SingleSignOnServices: []crewjam.Endpoint{
				{Binding: BindingRedirect, Location: p.url(PathSSO)},
				{Binding: BindingPOST, Location: p.url(PathSSO)},
			},
		}},
	}
}

// serveMetadata serves the IdP metadata at its stable URL.
func (p *IdP) serveMetadata(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	b, err := xml.MarshalIndent(p.Metadata(), "", "  ")
	if err != nil {
		p.errorPage(w, r, http.StatusInternalServerError, "server_error", err)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(b)
}
