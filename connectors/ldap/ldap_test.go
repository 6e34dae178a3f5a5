package ldap

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/garde-sso/garde/connectors"
	"github.com/garde-sso/garde/internal/assurance"
	"github.com/garde-sso/garde/internal/testutil"
)

var testNow = time.Date(2026, 2, 2, 9, 30, 0, 0, time.UTC)

// logWriter sends the connector's log to the test log, and fails the test
// if a password ever shows up in it.
type logWriter struct {
	t       testing.TB
	secrets []string
}

func (w logWriter) Write(p []byte) (int, error) {
	for _, s := range w.secrets {
		if strings.Contains(string(p), s) {
			w.t.Errorf("password in log: %s", p)
		}
	}
	w.t.Logf("%s", strings.TrimSpace(string(p)))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	secrets := []string{testutil.SlapdServicePassword}
	for _, u := range testutil.SlapdUsers() {
		secrets = append(secrets, u.Password)
	}
	return slog.New(slog.NewTextHandler(logWriter{t, secrets}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func ldapsConfig(s *testutil.Slapd) Config {
	return Config{
		ConnectorID:         "ad",
		URLs:                []string{s.LDAPSURL},
		RootCAs:             s.CAPool,
		BindDN:              testutil.SlapdServiceDN,
		BindPassword:        testutil.SlapdServicePassword,
		BaseDN:              testutil.SlapdBaseDN,
		NationalIDAttribute: "employeeNumber",
		Timeout:             2 * time.Second,
		Now:                 func() time.Time { return testNow },
	}
}

func open(t testing.TB, cfg Config) *Connector {
	t.Helper()
	c, err := Open(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func wantIdentity(u testutil.SlapdUser) connectors.Identity {
	id := connectors.Identity{
		Connector:   "ad",
		Subject:     u.GUID,
		Username:    u.Username,
		NationalID:  u.NationalID,
		GivenName:   u.GivenName,
		FamilyName:  u.FamilyName,
		DisplayName: u.DisplayName,
		Email:       u.Email,
		Groups:      u.Groups,
		AMR:         []string{"pwd"},
		Assurance:   assurance.Low,
		AuthTime:    testNow,
	}
	id.NationalIDType = connectors.NationalIDTypeOf(u.NationalID)
	return id
}

func TestLogin(t *testing.T) {
	s := testutil.StartSlapd(t)
	ctx := context.Background()

	t.Run("ldaps", func(t *testing.T) {
		c := open(t, ldapsConfig(s))
		for _, u := range []testutil.SlapdUser{testutil.SlapdJDupont, testutil.SlapdPMartin} {
			id, err := c.Login(ctx, u.Username, u.Password)
			if err != nil {
				t.Fatalf("Login(%s): %v", u.Username, err)
			}
			if want := wantIdentity(u); !reflect.DeepEqual(id, want) {
				t.Errorf("Login(%s) =\n %+v\nwant\n %+v", u.Username, id, want)
			}
		}
		// OpenLDAP ignores the in-chain rule: auto mode must have noticed
		// and fallen back to the recursive walk (nested group personnel
		// above proves the walk; the cycle boucle-a/boucle-b ends).
		if got := c.inChain.Load(); got != inChainUnsupported {
			t.Errorf("in-chain state = %d, want unsupported", got)
		}
		if err := c.Ping(ctx); err != nil {
			t.Errorf("Ping: %v", err)
		}
	})

	t.Run("national id types", func(t *testing.T) {
		c := open(t, ldapsConfig(s))
		id, err := c.Login(ctx, testutil.SlapdJDupont.Username, testutil.SlapdJDupont.Password)
		if err != nil || id.NationalID != testutil.SlapdJDupont.NationalID || id.NationalIDType != "rpps" {
			t.Errorf("jdupont: %q %q %v", id.NationalID, id.NationalIDType, err)
		}
		id, err = c.Login(ctx, testutil.SlapdPMartin.Username, testutil.SlapdPMartin.Password)
		if err != nil || id.NationalIDType != "adeli" {
			t.Errorf("pmartin: %q %q %v", id.NationalID, id.NationalIDType, err)
		}
	})

	t.Run("userPrincipalName", func(t *testing.T) {
		c := open(t, ldapsConfig(s))
		id, err := c.Login(ctx, testutil.SlapdJDupont.UserPrincipalName, testutil.SlapdJDupont.Password)
		if err != nil || id.Username != "jdupont" || id.Subject != testutil.SlapdJDupont.GUID {
			t.Errorf("Login by UPN = %+v, %v", id, err)
		}
	})

	t.Run("starttls", func(t *testing.T) {
		cfg := ldapsConfig(s)
		cfg.URLs = []string{s.URL}
		cfg.StartTLS = true
		c := open(t, cfg)
		id, err := c.Login(ctx, testutil.SlapdJDupont.Username, testutil.SlapdJDupont.Password)
		if err != nil || !reflect.DeepEqual(id, wantIdentity(testutil.SlapdJDupont)) {
			t.Errorf("Login over StartTLS = %+v, %v", id, err)
		}
	})

	t.Run("wrong CA", func(t *testing.T) {
		other := otherCA(t)
		for _, starttls := range []bool{false, true} {
			cfg := ldapsConfig(s)
			cfg.RootCAs = other
			if starttls {
				cfg.URLs = []string{s.URL}
				cfg.StartTLS = true
			}
			c := open(t, cfg)
			_, err := c.Login(ctx, testutil.SlapdJDupont.Username, testutil.SlapdJDupont.Password)
			if !errors.Is(err, connectors.ErrUnavailable) {
				t.Errorf("starttls=%v: Login with a wrong CA = %v, want ErrUnavailable", starttls, err)
			}
			if err := c.Ping(ctx); err == nil {
				t.Errorf("starttls=%v: Ping with a wrong CA succeeded", starttls)
			}
		}
	})

	t.Run("wrong server name", func(t *testing.T) {
		cfg := ldapsConfig(s)
		cfg.ServerName = "dc1.hopital.test"
		c := open(t, cfg)
		if _, err := c.Login(ctx, "jdupont", testutil.SlapdJDupont.Password); !errors.Is(err, connectors.ErrUnavailable) {
			t.Errorf("Login with a wrong server name = %v", err)
		}
	})

	t.Run("invalid credentials", func(t *testing.T) {
		c := open(t, ldapsConfig(s))
		pw := testutil.SlapdJDupont.Password
		for _, tc := range []struct{ user, pw string }{
			{"jdupont", "wrong"},
			{"jdupont", pw + " "},
			{"nobody", pw},
			{"nobody", "wrong"},
			{"garde-svc", testutil.SlapdServicePassword}, // not a user entry
			// Filter injection: must never match jdupont (or anyone).
			{"*", pw},
			{"j*", pw},
			{"jdupont)(", pw},
			{")(", pw},
			{"*)(sAMAccountName=jdupont", pw},
			{"jdupont)(|(objectClass=*", pw},
			{"jdupont\x00", pw},
			{"\x00", pw},
			{`\2a`, pw},
			{"jdupont\xff", pw},
			{strings.Repeat("a", 300), pw},
		} {
			_, err := c.Login(ctx, tc.user, tc.pw)
			if !errors.Is(err, connectors.ErrInvalidCredentials) {
				t.Errorf("Login(%q, %q) = %v, want ErrInvalidCredentials", tc.user, tc.pw, err)
			}
		}
	})

	t.Run("account states", func(t *testing.T) {
		c := open(t, ldapsConfig(s))
		for _, tc := range []struct {
			u    testutil.SlapdUser
			want error
		}{
			{testutil.SlapdDisabled, connectors.ErrAccountDisabled},
			{testutil.SlapdExpired, connectors.ErrAccountExpired},
			{testutil.SlapdMustChange, connectors.ErrPasswordExpired},
			{testutil.SlapdLocked, connectors.ErrAccountLocked},
		} {
			// The state is told only to who knows the password.
			if _, err := c.Login(ctx, tc.u.Username, "not-"+tc.u.Password); !errors.Is(err, connectors.ErrInvalidCredentials) {
				t.Errorf("%s with a wrong password: %v, want ErrInvalidCredentials", tc.u.Username, err)
			}
			_, err := c.Login(ctx, tc.u.Username, tc.u.Password)
			if !errors.Is(err, tc.want) || errors.Is(err, connectors.ErrInvalidCredentials) {
				t.Errorf("%s: %v, want %v", tc.u.Username, err, tc.want)
			}
		}
	})

	t.Run("plain ldap", func(t *testing.T) {
		cfg := ldapsConfig(s)
		cfg.URLs = []string{s.URL}
		if _, err := Open(cfg, nil); err == nil {
			t.Fatal("Open accepted ldap:// without StartTLS or InsecureNoTLS")
		}
		cfg.InsecureNoTLS = true
		c := open(t, cfg)
		if _, err := c.Login(ctx, "jdupont", testutil.SlapdJDupont.Password); err != nil {
			t.Errorf("Login over plain LDAP (allowed): %v", err)
		}
	})

	t.Run("failover", func(t *testing.T) {
		cfg := ldapsConfig(s)
		cfg.URLs = []string{"ldaps://127.0.0.1:" + closedPort(t), s.LDAPSURL}
		c := open(t, cfg)
		if _, err := c.Login(ctx, "jdupont", testutil.SlapdJDupont.Password); err != nil {
			t.Errorf("Login with the first server down: %v", err)
		}
	})

	t.Run("nested modes", func(t *testing.T) {
		for mode, want := range map[string][]string{
			NestedOff:       testutil.SlapdPMartin.DirectGroups,
			NestedRecursive: testutil.SlapdPMartin.Groups,
			NestedInChain:   nil, // OpenLDAP has no in-chain rule
		} {
			cfg := ldapsConfig(s)
			cfg.NestedGroups = mode
			c := open(t, cfg)
			id, err := c.Login(ctx, "pmartin", testutil.SlapdPMartin.Password)
			if err != nil || !reflect.DeepEqual(id.Groups, want) {
				t.Errorf("%s: groups %v, %v; want %v", mode, id.Groups, err, want)
			}
		}
		cfg := ldapsConfig(s)
		cfg.GroupBaseDN = "ou=elsewhere," + testutil.SlapdBaseDN
		c := open(t, cfg)
		if id, err := c.Login(ctx, "jdupont", testutil.SlapdJDupont.Password); err != nil || id.Groups != nil {
			t.Errorf("groups outside GroupBaseDN: %v, %v", id.Groups, err)
		}
	})

	t.Run("subject falls back to DN", func(t *testing.T) {
		cfg := ldapsConfig(s)
		cfg.IDAttribute = "entryUUIDx"
		c := open(t, cfg)
		id, err := c.Login(ctx, "jdupont", testutil.SlapdJDupont.Password)
		if err != nil || id.Subject != testutil.SlapdJDupont.DN {
			t.Errorf("Subject = %q, %v", id.Subject, err)
		}
	})

	t.Run("wrong service password", func(t *testing.T) {
		cfg := ldapsConfig(s)
		cfg.BindPassword = "wrong"
		c := open(t, cfg)
		if _, err := c.Login(ctx, "jdupont", testutil.SlapdJDupont.Password); !errors.Is(err, connectors.ErrUnavailable) {
			t.Errorf("Login = %v, want ErrUnavailable", err)
		}
		if err := c.Ping(ctx); !errors.Is(err, connectors.ErrUnavailable) {
			t.Errorf("Ping = %v, want ErrUnavailable", err)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		cfg := ldapsConfig(s)
		cfg.PoolSize = 4
		c := open(t, cfg)
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := range 20 {
			u := testutil.SlapdJDupont
			if i%2 == 1 {
				u = testutil.SlapdPMartin
			}
			wg.Go(func() {
				id, err := c.Login(ctx, u.Username, u.Password)
				if err == nil && !reflect.DeepEqual(id, wantIdentity(u)) {
					err = errors.New("wrong identity for " + u.Username)
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		// Search connections must still be bound as the service account,
		// never as a person who signed in.
		err := c.search.with(ctx, func(conn *conn) error {
			return conn.do(ctx, time.Second, func(l *goldap.Conn) error {
				who, err := l.WhoAmI(nil)
				if err == nil && !strings.EqualFold(who.AuthzID, "dn:"+testutil.SlapdServiceDN) {
					t.Errorf("pooled search connection bound as %q", who.AuthzID)
				}
				return err
			})
		})
		if err != nil {
			t.Errorf("WhoAmI: %v", err)
		}
		c.search.mu.Lock()
		idle := len(c.search.idle)
		c.search.mu.Unlock()
		if idle > cfg.PoolSize {
			t.Errorf("%d idle connections, pool size %d", idle, cfg.PoolSize)
		}
	})
}

// The empty password must be refused before anything reaches the
// directory: a simple bind with a DN and no password is an unauthenticated
// bind, which AD answers with success.
func TestEmptyPasswordNeverBinds(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	c, err := Open(Config{
		URLs: []string{"ldap://" + l.Addr().String()}, InsecureNoTLS: true,
		BindDN: "cn=svc", BindPassword: "x", BaseDN: "dc=hopital,dc=test",
	}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, user := range []string{"jdupont", ""} {
		if _, err := c.Login(context.Background(), user, ""); !errors.Is(err, connectors.ErrInvalidCredentials) {
			t.Errorf("Login(%q, \"\") = %v, want ErrInvalidCredentials", user, err)
		}
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("%d connections to the directory for an empty password", n)
	}
}

func TestDirectoryStopped(t *testing.T) {
	s := testutil.StartSlapd(t)
	c := open(t, ldapsConfig(s))
	ctx := context.Background()
	if _, err := c.Login(ctx, "jdupont", testutil.SlapdJDupont.Password); err != nil {
		t.Fatalf("Login: %v", err)
	}
	s.Stop()
	start := time.Now()
	_, err := c.Login(ctx, "jdupont", testutil.SlapdJDupont.Password)
	if !errors.Is(err, connectors.ErrUnavailable) {
		t.Errorf("Login with the directory stopped = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Login took %v with the directory stopped", d)
	}
	if err := c.Ping(ctx); !errors.Is(err, connectors.ErrUnavailable) {
		t.Errorf("Ping = %v", err)
	}
}

func TestDirectoryHung(t *testing.T) {
	s := testutil.StartSlapd(t)
	cfg := ldapsConfig(s)
	cfg.Timeout = 300 * time.Millisecond
	c := open(t, cfg)
	ctx := context.Background()
	if _, err := c.Login(ctx, "jdupont", testutil.SlapdJDupont.Password); err != nil {
		t.Fatalf("Login: %v", err)
	}
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	defer s.Resume()
	start := time.Now()
	_, err := c.Login(ctx, "jdupont", testutil.SlapdJDupont.Password)
	if !errors.Is(err, connectors.ErrUnavailable) {
		t.Errorf("Login with the directory hung = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 3*cfg.Timeout {
		t.Errorf("Login took %v with the directory hung (timeout %v)", d, cfg.Timeout)
	}

	// A caller's deadline shorter than the timeout wins.
	cfg.Timeout = 5 * time.Second
	c2 := open(t, cfg)
	ctx2, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := c2.Login(ctx2, "jdupont", testutil.SlapdJDupont.Password); !errors.Is(err, connectors.ErrUnavailable) {
		t.Errorf("Login with a short context = %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Login took %v with a 200ms context", d)
	}

	// Once the directory is back, fresh connections replace the dead ones.
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, "jdupont", testutil.SlapdJDupont.Password); err != nil {
		t.Errorf("Login after the directory came back: %v", err)
	}
}

func otherCA(t testing.TB) *x509.CertPool {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Some other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

func closedPort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	return port
}
