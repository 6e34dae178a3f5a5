package cps

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/internal/assurance"
)

// cardHandler is what the sign-in flow will do with a card request: read
// the chain, authenticate, answer with the idNat or the reason code.
func cardHandler(c *Connector) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chain, err := c.ClientChain(r)
		if err == nil {
			var id connectors.Identity
			if id, err = c.Authenticate(r.Context(), chain); err == nil {
				fmt.Fprintf(w, "ok %s %s %s", id.NationalID, id.GivenName, id.FamilyName)
				return
			}
		}
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, Reason(err))
	})
}

func tlsCert(cards ...card) []tls.Certificate {
	var out []tls.Certificate
	for _, c := range cards {
		out = append(out, tls.Certificate{Certificate: [][]byte{c.cert.Raw}, PrivateKey: c.key, Leaf: c.cert})
	}
	return out
}

// startCardServer starts a real TLS server configured by TLSConfig and
// returns a client whose TLS config the caller adjusts.
func startCardServer(t *testing.T, c *Connector) (*httptest.Server, *tls.Config) {
	t.Helper()
	srv := httptest.NewUnstartedServer(cardHandler(c))
	srv.TLS = c.TLSConfig(nil)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	cfg := srv.Client().Transport.(*http.Transport).TLSClientConfig
	return srv, cfg
}

func get(t *testing.T, srv *httptest.Server, cfg *tls.Config) (int, string) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestTLSHandshakeWithCard(t *testing.T) {
	f := newFixture(t)
	c := f.connector(t)
	srv, cfg := startCardServer(t, c)

	cpsCard := f.card(t, cardOpts{})
	cfg.Certificates = tlsCert(cpsCard)
	code, body := get(t, srv, cfg)
	if code != http.StatusOK || body != "ok 899700075122 CAROLE PHARMACH0007512" {
		t.Fatalf("got %d %q", code, body)
	}

	// No certificate: the handshake still succeeds and the page says why.
	cfg.Certificates = nil
	if code, body := get(t, srv, cfg); code != http.StatusForbidden || body != "card_missing" {
		t.Fatalf("no certificate: got %d %q", code, body)
	}
}

// Browsers (and Go's client) offer only certificates issued by the CAs
// named in the certificate request: the card, not another certificate.
func TestTLSRequestNamesCardCAs(t *testing.T) {
	f := newFixture(t)
	c := f.connector(t)
	srv, cfg := startCardServer(t, c)
	other := newRoot(t, "AC AUTRE").intermediate(t, "AC AUTRE PERSONNES", "").card(t, cardOpts{cn: "899700099999", upn: "-"})
	cfg.Certificates = tlsCert(other, f.card(t, cardOpts{}))
	if code, body := get(t, srv, cfg); code != http.StatusOK || !strings.HasPrefix(body, "ok 899700075122") {
		t.Fatalf("got %d %q", code, body)
	}
	cfg.Certificates = tlsCert(other)
	if code, body := get(t, srv, cfg); code != http.StatusForbidden || body != "card_missing" {
		t.Fatalf("only a foreign certificate: got %d %q", code, body)
	}
}

// A client forcing an untrusted certificate completes the handshake
// (RequestClientCert) and gets a readable refusal.
func TestTLSUntrustedCertificateRefusedAfterHandshake(t *testing.T) {
	f := newFixture(t)
	c := f.connector(t)
	srv, cfg := startCardServer(t, c)
	self := selfSigned(t)
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return &tlsCert(self)[0], nil
	}
	if code, body := get(t, srv, cfg); code != http.StatusForbidden || body != "card_untrusted" {
		t.Fatalf("got %d %q", code, body)
	}
}

func selfSigned(t *testing.T) card {
	raw := mustMarshal(t, cardOpts{cn: "899700075122", sn: "X", gn: "Y"}.subject())
	key := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: nextSerial(), RawSubject: raw, NotBefore: t0.AddDate(-1, 0, 0), NotAfter: t0.AddDate(1, 0, 0), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(randReader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return card{cert, key}
}

func TestIdentity(t *testing.T) {
	f := newFixture(t)
	c := f.connector(t, func(o *Options) { o.PolicyOIDs = []string{"1.2.3.4", testPolicy} })
	cases := []struct {
		name string
		opts cardOpts
		want connectors.Identity
	}{
		{"CPS card (RPPS)", cardOpts{title: "Médecin", sn: "DONNAT-GADY", gn: "ISABELLE", cn: "810002813839", upn: "810002813839@carte-cps.fr"}, connectors.Identity{
			Subject: "810002813839", NationalID: "810002813839", NationalIDType: "rpps", GivenName: "ISABELLE", FamilyName: "DONNAT-GADY",
			DisplayName: "ISABELLE DONNAT-GADY", Professions: []connectors.Profession{{Label: "Médecin"}}}},
		{"staff card (CPA): OU is the structure", cardOpts{cn: "500000000029751/CPAT0001", sn: "MAITRE0000029750001", gn: "PATRICE", ou: "300000000029751", upn: "-"}, connectors.Identity{
			Subject: "500000000029751/CPAT0001", NationalID: "500000000029751/CPAT0001", NationalIDType: "structure", GivenName: "PATRICE",
			FamilyName: "MAITRE0000029750001", DisplayName: "PATRICE MAITRE0000029750001", Structure: "300000000029751"}},
		{"ADELI-era card: profession in OU", cardOpts{cn: "00B7010446", sn: "MASSEUR1044", gn: "HONORE", ou: "Masseur-Kinésithérapeute", upn: "0.0B7010446@carte-cps.fr"}, connectors.Identity{
			Subject: "00B7010446", NationalID: "00B7010446", NationalIDType: "adeli", GivenName: "HONORE", FamilyName: "MASSEUR1044",
			DisplayName: "HONORE MASSEUR1044", Professions: []connectors.Profession{{Label: "Masseur-Kinésithérapeute"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cc := f.card(t, tc.opts)
			id, err := c.Authenticate(t.Context(), []*x509.Certificate{cc.cert})
			if err != nil {
				t.Fatal(err)
			}
			w := tc.want
			w.Connector, w.AMR, w.Assurance, w.AuthTime = "cps", []string{"sc", "pin", "hwk", "mfa"}, assurance.High, t0
			if fmt.Sprintf("%+v", id) != fmt.Sprintf("%+v", w) {
				t.Errorf("identity\n got %+v\nwant %+v", id, w)
			}
		})
	}
}

func TestAuthenticateRefuses(t *testing.T) {
	f := newFixture(t)
	otherRoot := newRoot(t, "TEST AC RACINE IGC-SANTE FORT") // same name, other key
	otherInter := otherRoot.intermediate(t, "TEST AC IGC-SANTE FORT PERSONNES", "")
	foreign := otherInter.card(t, cardOpts{crlURL: f.leafCRL})
	cases := []struct {
		name   string
		chain  func() []*x509.Certificate
		opts   func(*Options)
		reason string
		err    error
	}{
		{"no certificate", func() []*x509.Certificate { return nil }, nil, "card_missing", ErrCardMissing},
		{"self-signed card", func() []*x509.Certificate { return []*x509.Certificate{selfSigned(t).cert} }, nil, "card_untrusted", ErrCardUntrusted},
		{"other root, even presented in the chain", func() []*x509.Certificate {
			return []*x509.Certificate{foreign.cert, otherInter.cert, otherRoot.cert}
		}, nil, "card_untrusted", ErrCardUntrusted},
		{"expired", func() []*x509.Certificate {
			return []*x509.Certificate{f.card(t, cardOpts{notBefore: t0.AddDate(-3, 0, 0), notAfter: t0.Add(-time.Second)}).cert}
		}, nil, "card_expired", ErrCardExpired},
		{"not yet valid", func() []*x509.Certificate {
			return []*x509.Certificate{f.card(t, cardOpts{notBefore: t0.Add(time.Hour)}).cert}
		}, nil, "card_expired", ErrCardExpired},
		{"no clientAuth (signature certificate)", func() []*x509.Certificate {
			return []*x509.Certificate{f.card(t, cardOpts{eku: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}}).cert}
		}, nil, "card_not_client_auth", ErrNotClientAuth},
		{"anyExtendedKeyUsage is not clientAuth", func() []*x509.Certificate {
			return []*x509.Certificate{f.card(t, cardOpts{eku: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}).cert}
		}, nil, "card_not_client_auth", ErrNotClientAuth},
		{"wrong policy", func() []*x509.Certificate {
			return []*x509.Certificate{f.card(t, cardOpts{policies: []string{"1.2.250.1.213.1.7.1.1.1.4.1"}}).cert}
		}, func(o *Options) { o.PolicyOIDs = []string{testPolicy} }, "card_policy", ErrPolicy},
		{"UPN names someone else", func() []*x509.Certificate {
			return []*x509.Certificate{f.card(t, cardOpts{upn: "899700099999@carte-cps.fr"}).cert}
		}, nil, "card_bad_subject", ErrBadSubject},
		{"CA certificate as card", func() []*x509.Certificate {
			return []*x509.Certificate{f.card(t, cardOpts{isCA: true}).cert}
		}, nil, "card_untrusted", ErrCardUntrusted},
		{"no CN", func() []*x509.Certificate {
			return []*x509.Certificate{f.card(t, cardOpts{rdns: pkix.RDNSequence{{attr(oidSN, "X"), attr(oidGN, "Y")}}, upn: "-"}).cert}
		}, nil, "card_bad_subject", ErrBadSubject},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var mods []func(*Options)
			if tc.opts != nil {
				mods = append(mods, tc.opts)
			}
			c := f.connector(t, mods...)
			_, err := c.Authenticate(t.Context(), tc.chain())
			if !errors.Is(err, tc.err) || Reason(err) != tc.reason {
				t.Fatalf("err = %v (reason %q); want %v (%s)", err, Reason(err), tc.err, tc.reason)
			}
		})
	}
}

// Presented intermediates help build the path: a card whose CA is not
// configured still signs in when the browser sends the CA.
func TestPresentedIntermediateIsAHint(t *testing.T) {
	f := newFixture(t)
	c := f.connector(t, func(o *Options) { o.Intermediates, o.CRLURLs = nil, nil })
	cc := f.card(t, cardOpts{})
	if _, err := c.Authenticate(t.Context(), []*x509.Certificate{cc.cert}); !errors.Is(err, ErrCardUntrusted) {
		t.Fatalf("without the intermediate: %v", err)
	}
	// The intermediate's distribution point is learnt from the verified
	// chain; until it is fetched the answer is unknown, then good.
	if _, err := c.Authenticate(t.Context(), []*x509.Certificate{cc.cert, f.inter.cert}); !errors.Is(err, ErrRevocationUnknown) {
		t.Fatalf("before fetching the root CRL: %v", err)
	}
	if err := c.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Authenticate(t.Context(), []*x509.Certificate{cc.cert, f.inter.cert}); err != nil {
		t.Fatal(err)
	}
}

func TestRevokedLeaf(t *testing.T) {
	f := newFixture(t)
	good, stolen := f.card(t, cardOpts{}), f.card(t, cardOpts{})
	f.publish(t, stolen.cert)
	c := f.connector(t)
	if _, err := c.Authenticate(t.Context(), []*x509.Certificate{good.cert}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Authenticate(t.Context(), []*x509.Certificate{stolen.cert})
	if !errors.Is(err, ErrRevoked) || Reason(err) != "card_revoked" {
		t.Fatalf("err = %v", err)
	}
}

func TestRevokedIntermediate(t *testing.T) {
	f := newFixture(t)
	cc := f.card(t, cardOpts{})
	f.publish(t, f.inter.cert)
	c := f.connector(t)
	_, err := c.Authenticate(t.Context(), []*x509.Certificate{cc.cert})
	if !errors.Is(err, ErrRevoked) || !strings.Contains(err.Error(), "CA certificate") {
		t.Fatalf("err = %v", err)
	}
}

func TestStaleCRLFailsClosed(t *testing.T) {
	f := newFixture(t)
	cc, stolen := f.card(t, cardOpts{}), f.card(t, cardOpts{})
	f.publish(t, stolen.cert)
	strict := f.connector(t)
	lenient := f.connector(t, func(o *Options) { o.AllowStaleCRL = true })
	f.clock.Advance(25 * time.Hour) // past nextUpdate; no refresh happened

	_, err := strict.Authenticate(t.Context(), []*x509.Certificate{cc.cert})
	if !errors.Is(err, ErrRevocationUnknown) || Reason(err) != "card_revocation_unknown" || !strings.Contains(err.Error(), "expired at") {
		t.Fatalf("strict: %v", err)
	}
	if _, err := lenient.Authenticate(t.Context(), []*x509.Certificate{cc.cert}); err != nil {
		t.Fatalf("allow_stale_crl: %v", err)
	}
	// A stale CRL still proves a revocation.
	if _, err := lenient.Authenticate(t.Context(), []*x509.Certificate{stolen.cert}); !errors.Is(err, ErrRevoked) {
		t.Fatalf("stale but revoked: %v", err)
	}
}

func TestCRLUnreachableAtStart(t *testing.T) {
	f := newFixture(t)
	cc := f.card(t, cardOpts{})
	f.srv.Close()
	c, err := New(t.Context(), f.options())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(t.Context()); err == nil || !strings.Contains(err.Error(), leafCRLPath) {
		t.Fatalf("Refresh: %v", err)
	}
	if _, err := c.Authenticate(t.Context(), []*x509.Certificate{cc.cert}); !errors.Is(err, ErrRevocationUnknown) {
		t.Fatalf("err = %v", err)
	}
}

func TestCRLSignedByWrongKeyIgnored(t *testing.T) {
	f := newFixture(t)
	cc := f.card(t, cardOpts{})
	// Signed in the intermediate's name, with another key.
	forged := func() []byte {
		bad := *f.inter
		bad.key = newKey(t)
		return bad.crl(t, t0.Add(-time.Minute), t0.Add(48*time.Hour))
	}

	// Only a forged CRL: nothing can be said, so refuse.
	f.srv.set(leafCRLPath, forged())
	c, err := New(t.Context(), f.options())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(t.Context()); err == nil || !strings.Contains(err.Error(), "not signed by any configured or known CA") {
		t.Fatalf("Refresh: %v", err)
	}
	if _, err := c.Authenticate(t.Context(), []*x509.Certificate{cc.cert}); !errors.Is(err, ErrRevocationUnknown) {
		t.Fatalf("forged CRL only: %v", err)
	}

	// A genuine CRL revoking the card, then a forged (newer) one that
	// omits it: the revocation stands.
	f.publish(t, cc.cert)
	if err := c.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.srv.set(leafCRLPath, forged())
	_ = c.Refresh(t.Context())
	if _, err := c.Authenticate(t.Context(), []*x509.Certificate{cc.cert}); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after a forged CRL: %v", err)
	}
}

// An older CRL served again (a replay, a stale mirror) does not replace a
// newer one: a recent revocation stays visible.
func TestOlderCRLDoesNotReplaceNewer(t *testing.T) {
	f := newFixture(t)
	cc := f.card(t, cardOpts{})
	old := f.inter.crl(t, t0.Add(-2*time.Hour), t0.Add(22*time.Hour))
	c := f.connector(t) // holds the CRL of thisUpdate t0-1h, card not revoked
	f.clock.Advance(time.Hour)
	f.publish(t, cc.cert)
	if err := c.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.srv.set(leafCRLPath, old)
	if err := c.Refresh(t.Context()); err == nil || !strings.Contains(err.Error(), "older") {
		t.Fatalf("Refresh with an older CRL: %v", err)
	}
	if _, err := c.Authenticate(t.Context(), []*x509.Certificate{cc.cert}); !errors.Is(err, ErrRevoked) {
		t.Fatalf("err = %v", err)
	}
}

func TestDeltaCRLRefused(t *testing.T) {
	f := newFixture(t)
	tmpl := &x509.RevocationList{Number: bigOne, ThisUpdate: t0, NextUpdate: t0.Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: oidDeltaCRLIndicator, Critical: true, Value: mustMarshal(t, 1)}}}
	der, err := x509.CreateRevocationList(randReader, tmpl, f.inter.cert, f.inter.key)
	if err != nil {
		t.Fatal(err)
	}
	f.srv.set(leafCRLPath, der)
	c, _ := New(t.Context(), f.options())
	if err := c.Refresh(t.Context()); err == nil || !strings.Contains(err.Error(), "delta CRL") {
		t.Fatalf("Refresh: %v", err)
	}
}

// A sign-in never touches the network: once the CRLs are held, the CRL
// server can disappear and cards are still checked, until nextUpdate.
func TestNoNetworkOnTheHotPath(t *testing.T) {
	f := newFixture(t)
	cc := f.card(t, cardOpts{})
	c := f.connector(t)
	hits := f.srv.hits.Load()
	f.srv.Close()
	for range 3 {
		if _, err := c.Authenticate(t.Context(), []*x509.Certificate{cc.cert}); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.srv.hits.Load(); got != hits {
		t.Fatalf("Authenticate made %d requests", got-hits)
	}
	f.clock.Advance(24*time.Hour + time.Second)
	if _, err := c.Authenticate(t.Context(), []*x509.Certificate{cc.cert}); !errors.Is(err, ErrRevocationUnknown) {
		t.Fatalf("after nextUpdate: %v", err)
	}
}

// A distribution point not configured is learnt from the first card that
// names it, fetched in the background, and used from then on.
func TestRunFetchesLearntDistributionPoint(t *testing.T) {
	f := newFixture(t)
	cc := f.card(t, cardOpts{})
	c := f.connector(t, func(o *Options) { o.CRLURLs = nil })
	refreshed := make(chan error, 10)
	c.onRefresh = func(err error) { refreshed <- err }

	hits := f.srv.hits.Load()
	if _, err := c.Authenticate(t.Context(), []*x509.Certificate{cc.cert}); !errors.Is(err, ErrRevocationUnknown) {
		t.Fatalf("first sign-in: %v", err)
	}
	if f.srv.hits.Load() != hits {
		t.Fatal("Authenticate fetched the CRL itself")
	}
	// Started only now so that the refresh cannot overtake the first
	// sign-in; the wake-up it left is waiting for Run.
	go c.Run(t.Context())
	if err := <-refreshed; err != nil {
		t.Fatal(err)
	}
	if _, err := c.Authenticate(t.Context(), []*x509.Certificate{cc.cert}); err != nil {
		t.Fatalf("after the background refresh: %v", err)
	}
}

func TestNextWaitBeforeNextUpdate(t *testing.T) {
	f := newFixture(t)
	c := f.connector(t, func(o *Options) { o.RefreshEvery = 48 * time.Hour })
	// CRLs expire in 24h: renew at 90% of that.
	if got, want := c.nextWait(), 24*time.Hour*9/10; got != want {
		t.Fatalf("nextWait = %s, want %s", got, want)
	}
	f.clock.Advance(30 * time.Hour)
	if got := c.nextWait(); got != minRefreshWait {
		t.Fatalf("nextWait past nextUpdate = %s, want %s", got, minRefreshWait)
	}
}

// Offline hospitals: CRL files, re-read on Refresh, no network at all.
func TestCRLFiles(t *testing.T) {
	f := newFixture(t)
	cc, stolen := f.card(t, cardOpts{}), f.card(t, cardOpts{})
	f.srv.Close()
	dir := t.TempDir()
	leafFile, rootFile := filepath.Join(dir, "ACI-FO-PP.crl"), filepath.Join(dir, "ARL.pem")
	write := func(revoked ...*x509.Certificate) {
		now := f.clock.Now()
		if err := os.WriteFile(leafFile, f.inter.crl(t, now, now.Add(24*time.Hour), revoked...), 0o600); err != nil {
			t.Fatal(err)
		}
		p := "-----BEGIN X509 CRL-----\n" + b64(f.root.crl(t, now, now.Add(24*time.Hour))) + "\n-----END X509 CRL-----\n"
		if err := os.WriteFile(rootFile, []byte(p), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(stolen.cert)
	c, err := New(t.Context(), Options{Anchors: []*x509.Certificate{f.root.cert}, Intermediates: []*x509.Certificate{f.inter.cert},
		CRLFiles: []string{leafFile, rootFile}, Clock: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Authenticate(t.Context(), []*x509.Certificate{cc.cert}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Authenticate(t.Context(), []*x509.Certificate{stolen.cert}); !errors.Is(err, ErrRevoked) {
		t.Fatalf("stolen: %v", err)
	}
	f.clock.Advance(time.Hour)
	write(stolen.cert, cc.cert)
	_ = c.Refresh(t.Context()) // the distribution points are unreachable; the files are read
	if _, err := c.Authenticate(t.Context(), []*x509.Certificate{cc.cert}); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after re-reading the file: %v", err)
	}

	// A missing or unreadable file fails New.
	if _, err := New(t.Context(), Options{Anchors: []*x509.Certificate{f.root.cert}, CRLFiles: []string{filepath.Join(dir, "none.crl")}}); err == nil {
		t.Fatal("New with a missing CRL file succeeded")
	}
}

func TestRevocationNone(t *testing.T) {
	f := newFixture(t)
	stolen := f.card(t, cardOpts{})
	f.publish(t, stolen.cert)
	f.srv.Close()
	c, err := New(t.Context(), Options{Anchors: []*x509.Certificate{f.root.cert}, Intermediates: []*x509.Certificate{f.inter.cert}, Revocation: RevocationNone, Clock: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Authenticate(t.Context(), []*x509.Certificate{stolen.cert}); err != nil {
		t.Fatalf("revocation none: %v", err)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	f := newFixture(t)
	for name, mod := range map[string]func(*Options){
		"no anchors":           func(o *Options) { o.Anchors = nil },
		"bad revocation":       func(o *Options) { o.Revocation = "crls" },
		"bad policy":           func(o *Options) { o.PolicyOIDs = []string{"not.an.oid"} },
		"header without proxy": func(o *Options) { o.Header, o.HeaderFormat = "X-SSL-Client-Cert", FormatPEM },
		"bad header format":    func(o *Options) { o.Header, o.HeaderFormat, o.TrustedProxies = "X", "der", proxies("10.0.0.0/8") },
		"ldap CRL URL":         func(o *Options) { o.CRLURLs = []string{"ldap://x/cn=crl"} },
	} {
		o := f.options()
		mod(&o)
		if _, err := New(t.Context(), o); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

func TestReason(t *testing.T) {
	for err, want := range map[error]string{
		nil:                            "",
		ErrCardMissing:                 "card_missing",
		fmt.Errorf("x: %w", ErrPolicy): "card_policy",
		ErrUntrustedHeader:             "card_untrusted_header",
		errors.New("other"):            "card_error",
	} {
		if got := Reason(err); got != want {
			t.Errorf("Reason(%v) = %q, want %q", err, got, want)
		}
	}
}

func TestParseSubject(t *testing.T) {
	cn := func(v string) pkix.AttributeTypeAndValue { return attr(oidCN, v) }
	cases := []struct {
		name string
		rdns pkix.RDNSequence
		want string // idNat, or "" for ErrBadSubject
	}{
		{"multi-valued RDN", pkix.RDNSequence{{attr(oidTitle, "Médecin")}, {attr(oidSN, "S"), cn("810002813839"), attr(oidGN, "G")}}, "810002813839"},
		{"older single-valued CN", pkix.RDNSequence{{attr(oidOU, "1760021832")}, {cn("3760021832/000000018")}}, "3760021832/000000018"},
		{"a second CN outside the multi-valued RDN", pkix.RDNSequence{{cn("899700099999")}, {attr(oidSN, "S"), cn("810002813839"), attr(oidGN, "G")}}, "810002813839"},
		{"two CNs in the RDN", pkix.RDNSequence{{attr(oidSN, "S"), cn("810002813839"), cn("899700099999")}}, ""},
		{"two multi-valued RDNs with CN", pkix.RDNSequence{{attr(oidSN, "S"), cn("810002813839")}, {attr(oidGN, "G"), cn("899700099999")}}, ""},
		{"two single CNs", pkix.RDNSequence{{cn("810002813839")}, {cn("899700099999")}}, ""},
		{"CN with spaces", pkix.RDNSequence{{cn("8100 02813839")}}, ""},
		{"control characters in a name", pkix.RDNSequence{{attr(oidSN, "S\x1b[2J"), cn("810002813839")}}, ""},
		{"two titles", pkix.RDNSequence{{attr(oidTitle, "A")}, {attr(oidTitle, "B")}, {cn("810002813839")}}, ""},
		{"non-string value", pkix.RDNSequence{{pkix.AttributeTypeAndValue{Type: oidCN, Value: 42}}}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parseSubject(mustMarshal(t, tc.rdns), nil)
			switch {
			case tc.want == "" && !errors.Is(err, ErrBadSubject):
				t.Fatalf("got %+v, %v; want ErrBadSubject", p, err)
			case tc.want != "" && (err != nil || p.idNat != tc.want):
				t.Fatalf("got %+v, %v; want %s", p, err, tc.want)
			}
		})
	}
}

func TestUPNForms(t *testing.T) {
	for upn, ok := range map[string]bool{
		"8.99700075122@carte-cps.fr":  true,
		"899700075122@carte-cps.fr":   true,
		"899700075122":                true,
		"8.99700075123@carte-cps.fr":  false,
		"8.997.00075122@carte-cps.fr": false,
		"":                            false,
	} {
		err := checkUPN([]pkix.Extension{upnSAN(t, upn)}, "899700075122")
		if (err == nil) != ok {
			t.Errorf("%q: err = %v", upn, err)
		}
	}
	if err := checkUPN([]pkix.Extension{upnSAN(t, "899700075122@carte-cps.fr", "899700099999@carte-cps.fr")}, "899700075122"); !errors.Is(err, ErrBadSubject) {
		t.Errorf("second UPN naming someone else: %v", err)
	}
	if err := checkUPN([]pkix.Extension{{Id: oidSAN, Value: []byte{0x30, 0x03, 0xa0, 0x01}}}, "899700075122"); !errors.Is(err, ErrBadSubject) {
		t.Errorf("malformed SAN: %v", err)
	}
}
