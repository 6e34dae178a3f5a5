package saml

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // only with allow_sha1, for old SPs
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// Size limits on what a browser brings. A real AuthnRequest is a few
// hundred bytes; LogoutRequests are smaller. The limits stop a request from
// costing memory or CPU (a deflate bomb, a deep document) before anything
// is verified.
const (
	maxEncodedBytes = 64 << 10 // base64 text, before decoding or inflating
	maxXMLBytes     = 64 << 10 // XML, after inflating
	maxXMLDepth     = 32
	maxXMLElements  = 512
)

// XML namespaces Garde checks by URI, never by prefix.
const (
	nsProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsDSig      = "http://www.w3.org/2000/09/xmldsig#"
)

// Errors a caller branches on. Each names what was wrong with a message.
var (
	// ErrMalformed: the message is not a well-formed, acceptable SAML
	// message (encoding, size, DTD, structure).
	ErrMalformed = errors.New("malformed SAML message")
	// ErrSignature: a required signature is missing, or a signature does
	// not verify with the service provider's registered keys.
	ErrSignature = errors.New("SAML signature missing or invalid")
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// decodeBase64 decodes the base64 of a binding, bounded. Line breaks are
// tolerated: some SPs wrap their POST form values at 76 characters.
func decodeBase64(s string) ([]byte, error) {
	if len(s) > maxEncodedBytes {
		return nil, malformed("message of %d bytes exceeds the %d-byte limit", len(s), maxEncodedBytes)
	}
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, s)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, malformed("not base64: %v", err)
	}
	return b, nil
}

// inflate undoes the HTTP-Redirect binding's DEFLATE, stopping at
// maxXMLBytes so that a small bomb cannot expand into memory.
func inflate(b []byte) ([]byte, error) {
	r := flate.NewReader(bytes.NewReader(b))
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, maxXMLBytes+1))
	if err != nil {
		return nil, malformed("not DEFLATE data: %v", err)
	}
	if len(out) > maxXMLBytes {
		return nil, malformed("inflated message exceeds the %d-byte limit", maxXMLBytes)
	}
	return out, nil
}

// parseXML checks the document's shape with a streaming decoder, then
// builds the tree. It refuses DTDs (no DOCTYPE, hence no entities, internal
// or external), processing instructions other than the XML declaration,
// more than one root, deep nesting and many elements: none of these has a
// place in a SAML protocol message, and each has served an attack.
func parseXML(b []byte) (*etree.Document, error) {
	return parseXMLLimits(b, maxXMLBytes, maxXMLDepth, maxXMLElements)
}

func parseXMLLimits(b []byte, maxBytes, maxDepth, maxElements int) (*etree.Document, error) {
	if len(b) > maxBytes {
		return nil, malformed("XML of %d bytes exceeds the %d-byte limit", len(b), maxBytes)
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	depth, elements, roots := 0, 0, 0
	for {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, malformed("invalid XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, malformed("DTDs and other XML directives are not allowed")
		case xml.ProcInst:
			if t.Target != "xml" {
				return nil, malformed("processing instruction %q is not allowed", t.Target)
			}
		case xml.StartElement:
			if depth == 0 {
				roots++
			}
			depth++
			elements++
			if depth > maxDepth || elements > maxElements {
				return nil, malformed("XML too deep or too large")
			}
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return nil, malformed("text outside the root element")
			}
		}
	}
	if roots != 1 {
		return nil, malformed("expected exactly one root element, found %d", roots)
	}
	doc := etree.NewDocument()
	doc.ReadSettings = etree.ReadSettings{Permissive: false}
	if err := doc.ReadFromBytes(b); err != nil {
		return nil, malformed("invalid XML: %v", err)
	}
	if doc.Root() == nil {
		return nil, malformed("no root element")
	}
	return doc, nil
}

// is reports whether el is the element ns:tag (namespace by URI).
func is(el *etree.Element, ns, tag string) bool {
	return el != nil && el.Tag == tag && el.NamespaceURI() == ns
}

// children returns el's direct children named ns:tag.
func children(el *etree.Element, ns, tag string) []*etree.Element {
	var out []*etree.Element
	for _, c := range el.ChildElements() {
		if is(c, ns, tag) {
			out = append(out, c)
		}
	}
	return out
}

// child returns the only direct child ns:tag, nil if there is none, and an
// error if there are several: a duplicated element is ambiguous, and
// ambiguity (which one does the signature cover, which one do we read?) is
// how signature wrapping works.
func child(el *etree.Element, ns, tag string) (*etree.Element, error) {
	cs := children(el, ns, tag)
	switch len(cs) {
	case 0:
		return nil, nil
	case 1:
		return cs[0], nil
	}
	return nil, malformed("element %s appears %d times in %s", tag, len(cs), el.Tag)
}

// checkWrapping refuses the shapes of XML signature wrapping: a signature
// anywhere but as the root's direct child, and an ID attribute value used
// twice (the reference of a signature must designate one element only).
func checkWrapping(root *etree.Element) error {
	ids := map[string]bool{}
	var walk func(el *etree.Element, depth int) error
	walk = func(el *etree.Element, depth int) error {
		if is(el, nsDSig, "Signature") && depth != 1 {
			return malformed("a signature is only allowed as a direct child of the message")
		}
		for _, a := range el.Attr {
			if a.Space == "" && (a.Key == "ID" || a.Key == "Id" || a.Key == "id") {
				if ids[a.Value] {
					return malformed("ID %q is used twice", a.Value)
				}
				ids[a.Value] = true
			}
		}
		for _, c := range el.ChildElements() {
			if err := walk(c, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root, 0)
}

// Signature algorithms (XML DSig and the HTTP-Redirect SigAlg).
const (
	algRSASHA1   = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
	algRSASHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	algRSASHA512 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
	algECSHA256  = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
	digestSHA1   = "http://www.w3.org/2000/09/xmldsig#sha1"
)

// hashOf maps a signature algorithm to its hash; SHA-1 only when allowed.
func hashOf(alg string, allowSHA1 bool) (crypto.Hash, error) {
	switch alg {
	case algRSASHA256, algECSHA256:
		return crypto.SHA256, nil
	case algRSASHA512:
		return crypto.SHA512, nil
	case algRSASHA1:
		if allowSHA1 {
			return crypto.SHA1, nil
		}
		return 0, fmt.Errorf("%w: SHA-1 signatures are refused (allow_sha1 is off for this service provider)", ErrSignature)
	}
	return 0, fmt.Errorf("%w: unsupported signature algorithm %q", ErrSignature, alg)
}

// verifyEnveloped checks the enveloped signature of root with the
// service provider's registered certificates only (never a certificate the
// message carries), and returns the element the signature covers, as
// goxmldsig rebuilt it. Callers must read the message from that element and
// from nothing else.
func verifyEnveloped(root *etree.Element, certs []*x509.Certificate, allowSHA1 bool, now time.Time) (*etree.Element, error) {
	sig, err := child(root, nsDSig, "Signature")
	if err != nil {
		return nil, err
	}
	if sig == nil {
		return nil, fmt.Errorf("%w: the message is not signed", ErrSignature)
	}
	// Refuse SHA-1 before any cryptography: goxmldsig accepts it.
	for _, el := range sig.FindElements(".//SignatureMethod") {
		if _, err := hashOf(el.SelectAttrValue("Algorithm", ""), allowSHA1); err != nil {
			return nil, err
		}
	}
	for _, el := range sig.FindElements(".//DigestMethod") {
		if el.SelectAttrValue("Algorithm", "") == digestSHA1 && !allowSHA1 {
			return nil, fmt.Errorf("%w: SHA-1 digests are refused", ErrSignature)
		}
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: the service provider's metadata has no signing certificate", ErrSignature)
	}
	var last error
	// One certificate per attempt: goxmldsig then accepts a signature
	// without KeyInfo, and one whose KeyInfo names exactly that
	// certificate. A certificate in the message that is not registered
	// never verifies anything.
	for _, c := range certs {
		ctx := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{c}})
		ctx.Clock = dsig.NewFakeClockAt(now)
		verified, err := ctx.Validate(root.Copy())
		if err == nil {
			return verified, nil
		}
		last = err
	}
	return nil, fmt.Errorf("%w: %v", ErrSignature, last)
}

// redirectQuery is an HTTP-Redirect binding message as received: decoded
// values, and the exact bytes its signature covers.
type redirectQuery struct {
	Message    string // SAMLRequest or SAMLResponse, decoded
	RelayState string
	SigAlg     string
	Signature  []byte
	// signed is "SAMLRequest=...&RelayState=...&SigAlg=..." with the
	// values exactly as they appeared in the URL (saml-bindings §3.4.4.1):
	// re-encoding would change the bytes and break valid signatures, or
	// make an invalid one look valid.
	signed string
}

// parseRedirectQuery splits a raw query string by hand, so that the
// signature is checked over the bytes the SP signed. A parameter given
// twice is refused: which copy was signed and which would be read?
func parseRedirectQuery(raw, param string) (*redirectQuery, error) {
	if len(raw) > 2*maxEncodedBytes {
		return nil, malformed("query string too long")
	}
	rawVals := map[string]string{}
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return nil, malformed("bad query parameter name")
		}
		switch key {
		case param, "RelayState", "SigAlg", "Signature":
			if _, dup := rawVals[key]; dup {
				return nil, malformed("parameter %s is given twice", key)
			}
			rawVals[key] = v
		}
	}
	q := &redirectQuery{}
	for key, dst := range map[string]*string{param: &q.Message, "RelayState": &q.RelayState, "SigAlg": &q.SigAlg} {
		if v, ok := rawVals[key]; ok {
			s, err := url.QueryUnescape(v)
			if err != nil {
				return nil, malformed("bad %s encoding", key)
			}
			*dst = s
		}
	}
	if q.Message == "" {
		return nil, malformed("no %s parameter", param)
	}
	if v, ok := rawVals["Signature"]; ok {
		s, err := url.QueryUnescape(v)
		if err != nil {
			return nil, malformed("bad Signature encoding")
		}
		if q.Signature, err = base64.StdEncoding.DecodeString(s); err != nil {
			return nil, malformed("Signature is not base64")
		}
		if _, ok := rawVals["SigAlg"]; !ok {
			return nil, malformed("Signature without SigAlg")
		}
		signed := param + "=" + rawVals[param]
		if v, ok := rawVals["RelayState"]; ok {
			signed += "&RelayState=" + v
		}
		q.signed = signed + "&SigAlg=" + rawVals["SigAlg"]
	}
	return q, nil
}

// verify checks the query signature with the SP's registered certificates.
func (q *redirectQuery) verify(certs []*x509.Certificate, allowSHA1 bool) error {
	if q.Signature == nil {
		return fmt.Errorf("%w: the message is not signed", ErrSignature)
	}
	h, err := hashOf(q.SigAlg, allowSHA1)
	if err != nil {
		return err
	}
	var digest []byte
	switch h {
	case crypto.SHA1:
		s := sha1.Sum([]byte(q.signed)) //nolint:gosec // allowed explicitly per SP
		digest = s[:]
	case crypto.SHA256:
		s := sha256.Sum256([]byte(q.signed))
		digest = s[:]
	case crypto.SHA512:
		s := sha512.Sum512([]byte(q.signed))
		digest = s[:]
	}
	ec := q.SigAlg == algECSHA256
	for _, c := range certs {
		switch pub := c.PublicKey.(type) {
		case *rsa.PublicKey:
			if !ec && rsa.VerifyPKCS1v15(pub, h, digest, q.Signature) == nil {
				return nil
			}
		case *ecdsa.PublicKey:
			if ec && ecdsa.VerifyASN1(pub, digest, q.Signature) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: the query signature does not verify with the service provider's registered keys", ErrSignature)
}
