package testutil

// A private OpenLDAP server for tests of the LDAP connector and end-to-end
// tests. Each StartSlapd call runs its own slapd process with its own
// directory, ports and TLS certificates, so several test packages can run
// them at once. OpenLDAP is not Active Directory: the fixture adds the AD
// attributes Garde reads (sAMAccountName, userAccountControl, ...) through a
// small custom schema, and the memberof overlay computes memberOf as AD does.
// What OpenLDAP cannot imitate is AD's bind diagnostics ("data 533"): the
// connector's parser for those is unit-tested apart.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// Directory layout and accounts of the fixture.
const (
	SlapdBaseDN    = "dc=hopital,dc=test"
	SlapdPeopleDN  = "ou=people," + SlapdBaseDN
	SlapdGroupsDN  = "ou=groups," + SlapdBaseDN
	SlapdServiceOU = "ou=service," + SlapdBaseDN

	// SlapdServiceDN is the account Garde binds as to search users.
	SlapdServiceDN       = "cn=garde-svc," + SlapdServiceOU
	SlapdServicePassword = "Svc-garde-2024!"

	// SlapdAdminDN is the root DN, for tests that change the directory.
	SlapdAdminDN       = "cn=admin," + SlapdBaseDN
	SlapdAdminPassword = "Admin-garde-2024!"

	// SlapdUserFilter matches the connector's default AD filter.
	SlapdUserFilter = "(&(objectClass=user)(|(sAMAccountName={username})(userPrincipalName={username})))"
)

// SlapdUser describes one person of the fixture and what a connector should
// return for them.
type SlapdUser struct {
	Username          string // sAMAccountName
	UserPrincipalName string
	Password          string
	DN                string
	// GUID is the objectGUID in canonical form; the directory holds the 16
	// bytes in AD's mixed-endian order.
	GUID        string
	GivenName   string
	FamilyName  string
	DisplayName string
	Email       string
	NationalID  string // employeeNumber
	// DirectGroups are the groups that list the user as member; Groups adds
	// the groups reached through nesting. Both hold cn values, sorted.
	DirectGroups []string
	Groups       []string

	attrs map[string][]string // AD account state attributes
}

// Fixture people. Treat them as constants: copy before changing.
var (
	// SlapdJDupont is a physician, member of medecins, itself a member of
	// personnel (a nested group).
	SlapdJDupont = SlapdUser{
		Username: "jdupont", UserPrincipalName: "jdupont@hopital.test",
		Password: "Jeanne-Dupont-1!", DN: "cn=Jeanne Dupont," + SlapdPeopleDN,
		GUID:      "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
		GivenName: "Jeanne", FamilyName: "Dupont", DisplayName: "Dr Jeanne Dupont",
		Email: "jeanne.dupont@hopital.test", NationalID: "810000000009", // 8 + RPPS (Luhn-valid)
		DirectGroups: []string{"medecins"},
		Groups:       []string{"medecins", "personnel"},
		attrs: map[string][]string{
			"userAccountControl": {"512"},
			"accountExpires":     {"9223372036854775807"},
			"pwdLastSet":         {slapdFiletime(time.Date(2025, 1, 6, 8, 0, 0, 0, time.UTC))},
		},
	}
	// SlapdPMartin is a nurse, member of infirmiers (in personnel) and of
	// boucle-a, which with boucle-b forms a membership cycle.
	SlapdPMartin = SlapdUser{
		Username: "pmartin", UserPrincipalName: "pmartin@hopital.test",
		Password: "Paul-Martin-2!", DN: "cn=Paul Martin," + SlapdPeopleDN,
		GUID:      "8c1d6a1e-2b7f-4e3a-9b5d-6f0a1c2d3e4f",
		GivenName: "Paul", FamilyName: "Martin", DisplayName: "Paul Martin",
		Email: "paul.martin@hopital.test", NationalID: "0751234567", // 0 + ADELI
		DirectGroups: []string{"boucle-a", "infirmiers"},
		Groups:       []string{"boucle-a", "boucle-b", "infirmiers", "personnel"},
		attrs: map[string][]string{
			"userAccountControl": {"66048"}, // NORMAL_ACCOUNT | DONT_EXPIRE_PASSWORD
			"accountExpires":     {slapdFiletime(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC))},
			"pwdLastSet":         {slapdFiletime(time.Date(2025, 3, 3, 8, 0, 0, 0, time.UTC))},
		},
	}
	// SlapdDisabled has ACCOUNTDISABLE set (userAccountControl 514).
	SlapdDisabled = slapdStateUser("disabled", "Disabled-3!", "0b6b7f4e-1c1a-4d8e-8d1e-000000000003",
		map[string][]string{"userAccountControl": {"514"}})
	// SlapdExpired has an accountExpires in the past.
	SlapdExpired = slapdStateUser("expired", "Expired-4!", "0b6b7f4e-1c1a-4d8e-8d1e-000000000004",
		map[string][]string{"accountExpires": {slapdFiletime(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))}})
	// SlapdMustChange has pwdLastSet 0: the password must be changed.
	SlapdMustChange = slapdStateUser("mustchange", "Must-Change-5!", "0b6b7f4e-1c1a-4d8e-8d1e-000000000005",
		map[string][]string{"pwdLastSet": {"0"}})
	// SlapdLocked has LOCKOUT (0x10) set in userAccountControl.
	SlapdLocked = slapdStateUser("locked", "Locked-6!", "0b6b7f4e-1c1a-4d8e-8d1e-000000000006",
		map[string][]string{"userAccountControl": {"528"}})
)

func slapdStateUser(name, password, guid string, state map[string][]string) SlapdUser {
	attrs := map[string][]string{
		"userAccountControl": {"512"},
		"accountExpires":     {"0"},
		"pwdLastSet":         {slapdFiletime(time.Date(2025, 1, 6, 8, 0, 0, 0, time.UTC))},
	}
	for k, v := range state {
		attrs[k] = v
	}
	return SlapdUser{
		Username: name, UserPrincipalName: name + "@hopital.test", Password: password,
		DN: "cn=" + name + "," + SlapdPeopleDN, GUID: guid,
		GivenName: "Test", FamilyName: strings.ToUpper(name[:1]) + name[1:],
		DisplayName: "Test " + name, Email: name + "@hopital.test",
		attrs: attrs,
	}
}

// SlapdUsers returns every person of the fixture.
func SlapdUsers() []SlapdUser {
	return []SlapdUser{SlapdJDupont, SlapdPMartin, SlapdDisabled, SlapdExpired, SlapdMustChange, SlapdLocked}
}

// slapdFiletime renders t as a Windows FILETIME (100 ns since 1601).
func slapdFiletime(t time.Time) string {
	const epochDiff = 116444736000000000 // 1601-01-01 to 1970-01-01 in 100 ns
	return strconv.FormatInt(t.UnixNano()/100+epochDiff, 10)
}

// slapdGUIDBytes encodes a canonical GUID in AD's objectGUID byte order (the
// first three fields little-endian).
func slapdGUIDBytes(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		panic("testutil: bad fixture GUID " + s)
	}
	b[0], b[1], b[2], b[3] = b[3], b[2], b[1], b[0]
	b[4], b[5] = b[5], b[4]
	b[6], b[7] = b[7], b[6]
	return b
}

// Slapd is a running private OpenLDAP server.
type Slapd struct {
	// URL is the plain ldap:// address (StartTLS is offered there).
	URL string
	// LDAPSURL is the ldaps:// address.
	LDAPSURL string
	// CAPool and CAFile hold the test CA that signed the server
	// certificate (SANs 127.0.0.1 and localhost).
	CAPool *x509.CertPool
	CAFile string
	// Dir holds the configuration, database and certificates.
	Dir string

	cmd  *exec.Cmd
	out  *slapdOutput
	done chan struct{}
	mu   sync.Mutex
	stop bool
}

type slapdOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *slapdOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *slapdOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// SlapdBinary is where StartSlapd looks for slapd first (Debian's
// package); then it tries $PATH.
const SlapdBinary = "/usr/sbin/slapd"

// Where distributions keep OpenLDAP's modules and schema files.
var (
	slapdModuleDirs = []string{"/usr/lib/ldap", "/usr/lib64/openldap", "/usr/lib/openldap", "/usr/local/libexec/openldap", "/opt/homebrew/opt/openldap/libexec/openldap"}
	slapdSchemaDirs = []string{"/etc/ldap/schema", "/etc/openldap/schema", "/usr/local/etc/openldap/schema", "/opt/homebrew/etc/openldap/schema"}
)

func slapdFind(dirs []string, file string) string {
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, file)); err == nil {
			return d
		}
	}
	return ""
}

// slapdTools returns the paths of slapd and slapadd.
func slapdTools() (slapd, slapadd string, err error) {
	slapd = SlapdBinary
	if _, err := os.Stat(slapd); err != nil {
		if slapd, err = exec.LookPath("slapd"); err != nil {
			return "", "", fmt.Errorf("%s: %w", SlapdBinary, err)
		}
	}
	slapadd = filepath.Join(filepath.Dir(slapd), "slapadd")
	if _, err := os.Stat(slapadd); err != nil {
		if slapadd, err = exec.LookPath("slapadd"); err != nil {
			return "", "", err
		}
	}
	if slapdFind(slapdSchemaDirs, "core.ldif") == "" {
		return "", "", errors.New("OpenLDAP schema files (core.ldif) not found")
	}
	return slapd, slapadd, nil
}

// slapdSysProcAttr asks Linux to kill slapd when the test binary dies
// (a test timeout exits without running cleanups). Pdeathsig exists only
// on Linux; reflection keeps this file building elsewhere.
func slapdSysProcAttr() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{}
	if f := reflect.ValueOf(attr).Elem().FieldByName("Pdeathsig"); f.IsValid() && f.CanSet() &&
		f.Type() == reflect.TypeOf(syscall.SIGKILL) {
		f.Set(reflect.ValueOf(syscall.SIGKILL))
	}
	return attr
}

// StartSlapd starts a private slapd seeded with the fixture and stops it at
// the end of the test. Without slapd installed the test is skipped, or fails
// when GARDE_TEST_REQUIRE_SERVICES=1.
func StartSlapd(t testing.TB) *Slapd {
	t.Helper()
	slapd, slapadd, err := slapdTools()
	if err != nil {
		if os.Getenv("GARDE_TEST_REQUIRE_SERVICES") == "1" {
			t.Fatalf("slapd not installed: run scripts/test.sh (%v)", err)
		}
		t.Skipf("slapd not installed: run scripts/test.sh (%v; GARDE_TEST_REQUIRE_SERVICES=1 makes this fail)", err)
	}
	// Ports are picked by binding :0 and closing, so another process may
	// take one before slapd binds it; retry with fresh ports.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := slapdStart(t, slapd, slapadd)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("start slapd: %v", lastErr)
	return nil
}

func slapdStart(t testing.TB, slapd, slapadd string) (*Slapd, error) {
	dir, err := os.MkdirTemp("", "garde-slapd-")
	if err != nil {
		return nil, err
	}
	s := &Slapd{Dir: dir, out: &slapdOutput{}, done: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			s.Stop()
			os.RemoveAll(dir)
		}
	}()
	caPEM, err := slapdWriteCerts(dir)
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	s.CAFile = filepath.Join(dir, "ca.crt")
	s.CAPool = x509.NewCertPool()
	s.CAPool.AppendCertsFromPEM(caPEM)

	confDir := filepath.Join(dir, "slapd.d")
	for _, d := range []string{confDir, filepath.Join(dir, "data")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return nil, err
		}
	}
	ldif, err := slapdConfigLDIF(dir)
	if err != nil {
		return nil, err
	}
	ldifPath := filepath.Join(dir, "config.ldif")
	if err := os.WriteFile(ldifPath, []byte(ldif), 0o600); err != nil {
		return nil, err
	}
	if out, err := exec.Command(slapadd, "-n0", "-F", confDir, "-l", ldifPath).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("slapadd -n0: %v\n%s", err, out)
	}

	ports, err := slapdFreePorts(2)
	if err != nil {
		return nil, err
	}
	s.URL = fmt.Sprintf("ldap://127.0.0.1:%d", ports[0])
	s.LDAPSURL = fmt.Sprintf("ldaps://127.0.0.1:%d", ports[1])
	// -d keeps slapd in the foreground, so it dies with the test binary's
	// kill and its output is ours.
	s.cmd = exec.Command(slapd, "-d", "0", "-F", confDir, "-h", s.URL+"/ "+s.LDAPSURL+"/")
	s.cmd.Stdout = s.out
	s.cmd.Stderr = s.out
	s.cmd.SysProcAttr = slapdSysProcAttr()
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("run slapd: %w", err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()

	admin, err := s.waitReady(5 * time.Second)
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	if err := slapdSeed(admin); err != nil {
		return nil, fmt.Errorf("seed: %w\n%s", err, s.out.String())
	}
	ok = true
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("slapd output:\n%s", s.out.String())
		}
		os.RemoveAll(dir)
	})
	return s, nil
}

// waitReady polls until slapd accepts the admin bind on ldap:// and TCP
// connections on ldaps://.
func (s *Slapd) waitReady(limit time.Duration) (*goldap.Conn, error) {
	deadline := time.Now().Add(limit)
	hostS := strings.TrimPrefix(s.LDAPSURL, "ldaps://")
	for {
		select {
		case <-s.done:
			return nil, fmt.Errorf("slapd exited: %s", s.out.String())
		default:
		}
		conn, err := goldap.DialURL(s.URL, goldap.DialWithDialer(&net.Dialer{Timeout: time.Second}))
		if err == nil {
			conn.SetTimeout(2 * time.Second)
			if err = conn.Bind(SlapdAdminDN, SlapdAdminPassword); err == nil {
				var c net.Conn
				if c, err = net.DialTimeout("tcp", hostS, time.Second); err == nil {
					c.Close()
					return conn, nil
				}
			}
			conn.Close()
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("slapd not ready after %v: %v\n%s", limit, err, s.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills slapd (idempotent): the directory becomes unreachable and open
// connections are reset.
func (s *Slapd) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.stop = true
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Pause freezes slapd (SIGSTOP): connections are still accepted by the
// kernel but nothing answers, as with a hung or black-holed server. It
// returns once the process is stopped.
func (s *Slapd) Pause() error { return s.signal(syscall.SIGSTOP, true) }

// Resume undoes Pause.
func (s *Slapd) Resume() error { return s.signal(syscall.SIGCONT, false) }

func (s *Slapd) signal(sig syscall.Signal, stopped bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop || s.cmd == nil || s.cmd.Process == nil {
		return errors.New("slapd not running")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		return err
	}
	// Signals are delivered asynchronously: wait for the state to show in
	// /proc, or a request sent right after Pause may still be answered.
	// Each thread stops on its own, so check them all.
	tasks := fmt.Sprintf("/proc/%d/task", s.cmd.Process.Pid)
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		entries, err := os.ReadDir(tasks)
		if err != nil {
			return nil // not Linux, or gone: nothing more to wait for
		}
		done := true
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(tasks, e.Name(), "stat"))
			if err != nil {
				continue // thread exited
			}
			// The state follows the parenthesised command name.
			i := bytes.LastIndexByte(data, ')')
			if i >= 0 && i+2 < len(data) && (data[i+2] == 'T' || data[i+2] == 't') != stopped {
				done = false
				break
			}
		}
		if done {
			return nil
		}
	}
	return fmt.Errorf("slapd did not reach the %v state", sig)
}

// Output returns what slapd printed so far.
func (s *Slapd) Output() string { return s.out.String() }

// Admin returns a connection bound as the root DN over plain LDAP, closed
// at the end of the test.
func (s *Slapd) Admin(t testing.TB) *goldap.Conn {
	t.Helper()
	conn, err := goldap.DialURL(s.URL, goldap.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}))
	if err != nil {
		t.Fatalf("dial slapd: %v", err)
	}
	conn.SetTimeout(5 * time.Second)
	if err := conn.Bind(SlapdAdminDN, SlapdAdminPassword); err != nil {
		conn.Close()
		t.Fatalf("admin bind: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func slapdFreePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// slapdWriteCerts writes a fresh CA and a server certificate for 127.0.0.1
// and localhost, and returns the CA in PEM.
func slapdWriteCerts(dir string) ([]byte, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Garde test CA (slapd)"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(48 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(48 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		return nil, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	files := map[string][]byte{
		"ca.crt":     caPEM,
		"server.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}),
		"server.key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	return caPEM, nil
}

// slapdADSchema declares the Active Directory attributes Garde reads, with
// Microsoft's OIDs, and an auxiliary class named both adUser and user so
// that the connector's default filter (objectClass=user) works unchanged.
const slapdADSchema = `dn: cn=garde-ad,cn=schema,cn=config
objectClass: olcSchemaConfig
cn: garde-ad
olcAttributeTypes: ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName' EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.4.656 NAME 'userPrincipalName' EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.4.8 NAME 'userAccountControl' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.4.159 NAME 'accountExpires' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.4.96 NAME 'pwdLastSet' EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
olcAttributeTypes: ( 1.2.840.113556.1.4.2 NAME 'objectGUID' EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
olcObjectClasses: ( 1.3.6.1.4.1.99999.7.2.1 NAME ( 'adUser' 'user' ) DESC 'Garde test: AD user attributes' AUXILIARY MAY ( sAMAccountName $ userPrincipalName $ userAccountControl $ accountExpires $ pwdLastSet $ objectGUID ) )
`

func slapdConfigLDIF(dir string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, `dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: %[1]s/slapd.pid
olcArgsFile: %[1]s/slapd.args
olcLogLevel: none
olcTLSCACertificateFile: %[1]s/ca.crt
olcTLSCertificateFile: %[1]s/server.crt
olcTLSCertificateKeyFile: %[1]s/server.key

`, dir)
	// Modules, where the build has them as modules (Debian does);
	// otherwise they are assumed built in.
	if modDir := slapdFind(slapdModuleDirs, "memberof.so"); modDir != "" {
		fmt.Fprintf(&b, "dn: cn=module{0},cn=config\nobjectClass: olcModuleList\ncn: module{0}\nolcModulePath: %s\n", modDir)
		if _, err := os.Stat(filepath.Join(modDir, "back_mdb.so")); err == nil {
			b.WriteString("olcModuleLoad: back_mdb.so\n")
		}
		b.WriteString("olcModuleLoad: memberof.so\n\n")
	}
	b.WriteString("dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n")
	schemaDir := slapdFind(slapdSchemaDirs, "core.ldif")
	for _, name := range []string{"core", "cosine", "inetorgperson", "nis"} {
		data, err := os.ReadFile(filepath.Join(schemaDir, name+".ldif"))
		if err != nil {
			return "", err
		}
		b.Write(bytes.TrimSpace(data))
		b.WriteString("\n\n")
	}
	b.WriteString(slapdADSchema)
	fmt.Fprintf(&b, `
dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend
olcSizeLimit: 500

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: %[2]s
olcRootDN: %[3]s
olcRootPW: %[4]s
olcDbDirectory: %[1]s/data
olcDbMaxSize: 67108864
olcDbNoSync: TRUE
olcDbIndex: objectClass eq
olcDbIndex: sAMAccountName,userPrincipalName eq
olcDbIndex: member eq
olcAccess: {0}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {1}to * by dn.exact="%[5]s" read by self read by users search by * none

dn: olcOverlay={0}memberof,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {0}memberof
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf
olcMemberOfRefInt: TRUE
`, dir, SlapdBaseDN, SlapdAdminDN, SlapdAdminPassword, SlapdServiceDN)
	return b.String(), nil
}

// slapdSeed adds the tree over LDAP, so that the memberof overlay computes
// memberOf (slapadd would bypass it).
func slapdSeed(conn *goldap.Conn) error {
	add := func(dn string, attrs map[string][]string) error {
		req := goldap.NewAddRequest(dn, nil)
		for k, v := range attrs {
			req.Attribute(k, v)
		}
		if err := conn.Add(req); err != nil {
			return fmt.Errorf("add %s: %w", dn, err)
		}
		return nil
	}
	ou := func(name string) map[string][]string {
		return map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {name}}
	}
	steps := []struct {
		dn    string
		attrs map[string][]string
	}{
		{SlapdBaseDN, map[string][]string{"objectClass": {"dcObject", "organization"}, "dc": {"hopital"}, "o": {"Hopital de test"}}},
		{SlapdPeopleDN, ou("people")},
		{SlapdGroupsDN, ou("groups")},
		{SlapdServiceOU, ou("service")},
		{SlapdServiceDN, map[string][]string{
			"objectClass": {"organizationalRole", "simpleSecurityObject"}, "cn": {"garde-svc"},
			"userPassword": {SlapdServicePassword},
		}},
	}
	for _, u := range SlapdUsers() {
		attrs := map[string][]string{
			"objectClass":       {"inetOrgPerson", "adUser"},
			"cn":                {strings.SplitN(strings.TrimPrefix(u.DN, "cn="), ",", 2)[0]},
			"sn":                {u.FamilyName},
			"givenName":         {u.GivenName},
			"displayName":       {u.DisplayName},
			"mail":              {u.Email},
			"sAMAccountName":    {u.Username},
			"userPrincipalName": {u.UserPrincipalName},
			"userPassword":      {u.Password},
			"objectGUID":        {string(slapdGUIDBytes(u.GUID))},
		}
		if u.NationalID != "" {
			attrs["employeeNumber"] = []string{u.NationalID}
		}
		for k, v := range u.attrs {
			attrs[k] = v
		}
		steps = append(steps, struct {
			dn    string
			attrs map[string][]string
		}{u.DN, attrs})
	}
	group := func(cn string, members ...string) map[string][]string {
		return map[string][]string{"objectClass": {"groupOfNames"}, "cn": {cn}, "member": members}
	}
	g := func(cn string) string { return "cn=" + cn + "," + SlapdGroupsDN }
	for _, s := range []struct {
		cn      string
		members []string
	}{
		{"medecins", []string{SlapdJDupont.DN}},
		{"infirmiers", []string{SlapdPMartin.DN}},
		{"personnel", []string{g("medecins"), g("infirmiers")}},
		{"boucle-a", []string{SlapdPMartin.DN}},
		{"boucle-b", []string{g("boucle-a")}},
	} {
		steps = append(steps, struct {
			dn    string
			attrs map[string][]string
		}{g(s.cn), group(s.cn, s.members...)})
	}
	for _, s := range steps {
		if err := add(s.dn, s.attrs); err != nil {
			return err
		}
	}
	// Close the cycle: boucle-a is a member of boucle-b and vice versa.
	mod := goldap.NewModifyRequest(g("boucle-a"), nil)
	mod.Add("member", []string{g("boucle-b")})
	if err := conn.Modify(mod); err != nil {
		return fmt.Errorf("close group cycle: %w", err)
	}
	return nil
}
