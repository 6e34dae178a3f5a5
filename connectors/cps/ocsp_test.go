package cps

import (
	"crypto"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// ocspResponder answers for the fixture's intermediate with the status
// set per serial (default good), signed by signer.
type ocspResponder struct {
	*httptest.Server
	mu      sync.Mutex
	revoked map[string]bool
	issuer  *ca
	signer  *ca // the issuer itself, or a delegated responder
	clock   func() time.Time
}

func newOCSPResponder(t *testing.T, f *fixture) *ocspResponder {
	o := &ocspResponder{revoked: map[string]bool{}, issuer: f.inter, signer: f.inter, clock: f.clock.Now}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		now := o.clock()
		tmpl := ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber, ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(4 * time.Hour)}
		if o.revoked[req.SerialNumber.String()] {
			tmpl.Status, tmpl.RevokedAt = ocsp.Revoked, now.Add(-time.Hour)
		}
		if o.signer != o.issuer {
			tmpl.Certificate = o.signer.cert
		}
		der, err := ocsp.CreateResponse(o.issuer.cert, o.signer.cert, tmpl, o.signer.key)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		_, _ = w.Write(der)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *ocspResponder) revoke(serial *big.Int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.revoked[serial.String()] = true
}

// delegate makes the responder sign with a certificate the issuer gave it,
// with or without the OCSP signing usage.
func (o *ocspResponder) delegate(t *testing.T, ocspSigning bool) {
	key := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: nextSerial(), Subject: igcName("TEST OCSP IGC-SANTE"), NotBefore: t0.AddDate(-1, 0, 0), NotAfter: t0.AddDate(1, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature}
	if ocspSigning {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} // e.g. another card
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.signer = &ca{o.issuer.sign(t, tmpl, key), crypto.Signer(key)}
}

func TestOCSP(t *testing.T) {
	f := newFixture(t)
	resp := newOCSPResponder(t, f)
	good := f.card(t, cardOpts{ocspURL: resp.URL, crlURL: "-"})
	stolen := f.card(t, cardOpts{ocspURL: resp.URL, crlURL: "-"})
	resp.revoke(stolen.cert.SerialNumber)
	c := f.connector(t, func(o *Options) { o.Revocation, o.CRLURLs = RevocationOCSP, nil })

	// Not asked yet: the sign-in does not wait for the responder.
	for _, cc := range []card{good, stolen} {
		if _, err := c.Authenticate(t.Context(), []*x509.Certificate{cc.cert}); !errors.Is(err, ErrRevocationUnknown) {
			t.Fatalf("before the background query: %v", err)
		}
	}
	if err := c.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Authenticate(t.Context(), []*x509.Certificate{stolen.cert}); !errors.Is(err, ErrRevoked) {
		t.Fatalf("stolen: %v", err)
	}
	// The card is good, but in ocsp mode every CA below the root needs a
	// responder too, and this intermediate names none: fail closed.
	_, err := c.Authenticate(t.Context(), []*x509.Certificate{good.cert})
	if !errors.Is(err, ErrRevocationUnknown) || !strings.Contains(err.Error(), "CA certificate") {
		t.Fatalf("intermediate without OCSP: %v", err)
	}
}

// crl_ocsp: the CRL answers for the intermediate; OCSP answers for a card
// whose CRL cannot be had, from cache.
func TestCRLThenOCSP(t *testing.T) {
	f := newFixture(t)
	resp := newOCSPResponder(t, f)
	good := f.card(t, cardOpts{ocspURL: resp.URL, crlURL: f.srv.URL + "/missing.crl"})
	stolen := f.card(t, cardOpts{ocspURL: resp.URL, crlURL: f.srv.URL + "/missing.crl"})
	resp.revoke(stolen.cert.SerialNumber)
	c := f.connector(t, func(o *Options) { o.Revocation, o.CRLURLs = RevocationCRLOCSP, nil })
	for _, cc := range []card{good, stolen} {
		if _, err := c.Authenticate(t.Context(), []*x509.Certificate{cc.cert}); !errors.Is(err, ErrRevocationUnknown) {
			t.Fatalf("before the background query: %v", err)
		}
	}
	_ = c.Refresh(t.Context()) // /missing.crl fails; OCSP answers
	if _, err := c.Authenticate(t.Context(), []*x509.Certificate{good.cert}); err != nil {
		t.Fatalf("good: %v", err)
	}
	if _, err := c.Authenticate(t.Context(), []*x509.Certificate{stolen.cert}); !errors.Is(err, ErrRevoked) {
		t.Fatalf("stolen: %v", err)
	}
	// The OCSP answer is cached until its nextUpdate, then unknown.
	resp.Close()
	f.clock.Advance(5 * time.Hour)
	if _, err := c.Authenticate(t.Context(), []*x509.Certificate{good.cert}); !errors.Is(err, ErrRevocationUnknown) {
		t.Fatalf("after nextUpdate: %v", err)
	}
}

func TestOCSPDelegatedResponder(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ocspSigning bool
		want        error
	}{{"with OCSP signing usage", true, nil}, {"without: any certificate of the CA could vouch", false, ErrRevocationUnknown}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			resp := newOCSPResponder(t, f)
			resp.delegate(t, tc.ocspSigning)
			cc := f.card(t, cardOpts{ocspURL: resp.URL, crlURL: f.srv.URL + "/missing.crl"})
			c := f.connector(t, func(o *Options) { o.Revocation, o.CRLURLs = RevocationCRLOCSP, nil })
			_, _ = c.Authenticate(t.Context(), []*x509.Certificate{cc.cert})
			_ = c.Refresh(t.Context())
			if _, err := c.Authenticate(t.Context(), []*x509.Certificate{cc.cert}); !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}
