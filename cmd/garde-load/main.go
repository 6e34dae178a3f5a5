// Command garde-load is Garde's load harness. It starts a garde binary
// pinned to one CPU core (taskset, GOMAXPROCS=1), drives it over loopback
// from the other core, and reports the server's CPU time per request, read
// from /proc/<pid>/stat: the figure the performance targets are stated in.
//
//	go build -o /tmp/garde ./cmd/garde
//	go run ./cmd/garde-load -garde /tmp/garde [-backend postgres+redis] [-n 5000] [-c 4]
//
// Scenarios: discovery, jwks, client_credentials (ES256), and a code flow
// riding an SSO session (authorize → code → token, ES256 ID token). The
// sign-in with an AD password needs a directory: it is measured by
// BenchmarkPasswordSignIn in e2e/ (cpu-µs/op of Garde's process).
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

var profileScenario, profileOut string

// metricsPort serves the server's profiler during the run.
var metricsPort int

const (
	robotSecret = "robot-secret-0123456789abcdef0123456789abcdef"
	appSecret   = "load-app-secret-0123456789abcdef0123456789"
	userName    = "load.user"
	userPass    = "load-user-password"
)

func main() {
	garde := flag.String("garde", "", "path to the garde binary (go build -o /tmp/garde ./cmd/garde)")
	backend := flag.String("backend", "sqlite+memory", "sqlite+memory or postgres+redis")
	pgDSN := flag.String("postgres", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL DSN for postgres+redis")
	redisAddr := flag.String("redis", "127.0.0.1:6379", "Redis address for postgres+redis")
	n := flag.Int("n", 5000, "requests (or flows) per scenario")
	c := flag.Int("c", 4, "concurrent clients")
	serverCPU := flag.Int("server-cpu", 1, "CPU core the server is pinned to")
	clientCPU := flag.Int("client-cpu", 0, "CPU core this harness is pinned to")
	flag.StringVar(&profileScenario, "profile-scenario", "", "take a CPU profile of the server during this scenario")
	flag.StringVar(&profileOut, "profile", "garde-cpu.prof", "where to write that profile")
	flag.Parse()
	if *garde == "" {
		fmt.Fprintln(os.Stderr, "garde-load: -garde is required")
		os.Exit(2)
	}
	if err := pin(os.Getpid(), *clientCPU); err != nil {
		fmt.Fprintln(os.Stderr, "garde-load: pinning the harness:", err)
	}
	if err := run(*garde, *backend, *pgDSN, *redisAddr, *n, *c, *serverCPU); err != nil {
		fmt.Fprintln(os.Stderr, "garde-load:", err)
		os.Exit(1)
	}
}

func pin(pid, cpu int) error {
	return exec.Command("taskset", "-a", "-p", "-c", strconv.Itoa(cpu), strconv.Itoa(pid)).Run()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func hashPassword(garde, pw string) (string, error) {
	cmd := exec.Command(garde, "hash-password")
	cmd.Stdin = strings.NewReader(pw + "\n")
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

func run(garde, backend, pgDSN, redisAddr string, n, c, serverCPU int) error {
	dir, err := os.MkdirTemp("", "garde-load")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	port, err := freePort()
	if err != nil {
		return err
	}
	issuer := fmt.Sprintf("http://localhost:%d", port)
	if metricsPort, err = freePort(); err != nil {
		return err
	}
	hash, err := hashPassword(garde, userPass)
	if err != nil {
		return fmt.Errorf("hash-password: %w", err)
	}
	storage := fmt.Sprintf("  durable: {driver: sqlite, sqlite_path: %q}\n  ephemeral: {driver: memory}", filepath.Join(dir, "garde.db"))
	if backend == "postgres+redis" {
		// A database of its own, so that keys sealed by an earlier run's
		// master key are not in the way.
		dsn, drop, err := freshDatabase(pgDSN, fmt.Sprintf("garde_load_%d", port))
		if err != nil {
			return err
		}
		defer drop()
		pgDSN = dsn
		storage = fmt.Sprintf("  durable: {driver: postgres, postgres_dsn: %q}\n  ephemeral:\n    driver: redis\n    redis: {addrs: [%q], key_prefix: \"load-%d:\"}", pgDSN, redisAddr, port)
	}
	cfg := fmt.Sprintf(`issuer: %s
listen: {address: "127.0.0.1:%d", metrics_address: "127.0.0.1:%d"}
log: {level: warn}
master_key: {file: %q, generate_if_missing: true}
storage:
%s
throttle: {account_failures: 20, address_failures: 1000000, window: 1m}
connectors:
  - id: local
    type: static
    static:
      people:
        - {username: %s, password_hash: %q, given_name: Load, family_name: User, email: load@example.test, groups: [a, b, c]}
clients:
  - id: robot
    secret: %s
    grant_types: [client_credentials]
    scopes: [api]
    id_token_signed_response_alg: ES256
  - id: app
    secret: %s
    redirect_uris: [http://localhost:5555/cb]
    id_token_signed_response_alg: ES256
`, issuer, port, metricsPort, filepath.Join(dir, "master.key"), storage, userName, hash, robotSecret, appSecret)
	cfgPath := filepath.Join(dir, "garde.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	cmd := exec.Command("taskset", "-c", strconv.Itoa(serverCPU), garde, "serve", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_, _ = cmd.Process.Wait()
	}()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitReady(base); err != nil {
		return fmt.Errorf("%w\n%s", err, logs.String())
	}
	transport := &http.Transport{MaxIdleConnsPerHost: c * 2, DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", port))
	}}
	pid := cmd.Process.Pid
	fmt.Printf("garde-load: backend %s, server pinned to CPU %d (GOMAXPROCS=1), %d clients, %d operations per scenario\n", backend, serverCPU, c, n)
	fmt.Printf("%-28s %10s %12s %14s\n", "scenario", "ops/s", "server CPU/op", "server CPU total")

	simple := func(name string, req func() *http.Request, want int) error {
		client := &http.Client{Transport: transport}
		return measure(name, pid, n, c, func() error {
			resp, err := client.Do(req())
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				return fmt.Errorf("%s: status %d", name, resp.StatusCode)
			}
			return nil
		})
	}
	if err := simple("discovery", func() *http.Request {
		r, _ := http.NewRequest(http.MethodGet, issuer+"/.well-known/openid-configuration", nil)
		return r
	}, 200); err != nil {
		return err
	}
	if err := simple("jwks", func() *http.Request {
		r, _ := http.NewRequest(http.MethodGet, issuer+"/jwks", nil)
		return r
	}, 200); err != nil {
		return err
	}
	if err := simple("client_credentials ES256", func() *http.Request {
		r, _ := http.NewRequest(http.MethodPost, issuer+"/token", strings.NewReader("grant_type=client_credentials"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.SetBasicAuth("robot", robotSecret)
		return r
	}, 200); err != nil {
		return err
	}

	// One SSO session per client goroutine, then code flows riding it.
	sessions := make([]*http.Client, c)
	for i := range sessions {
		jar, _ := cookiejar.New(nil)
		sessions[i] = &http.Client{Transport: transport, Jar: jar, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
			if r.URL.Host == "localhost:5555" {
				return http.ErrUseLastResponse
			}
			return nil
		}}
		if _, err := codeFlow(sessions[i], issuer, true); err != nil {
			return fmt.Errorf("sign-in: %w", err)
		}
	}
	var next atomic.Int64
	return measure("code flow riding SSO", pid, n, c, func() error {
		cl := sessions[next.Add(1)%int64(c)]
		_, err := codeFlow(cl, issuer, false)
		return err
	})
}

func waitReady(base string) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("garde did not become ready")
}

var hidden = regexp.MustCompile(`name="([a-z_]+)" value="([^"]*)"`)

const verifier = "load-verifier-0123456789abcdefghijklmnopqrstuvwxyz-0123456789"

// codeFlow runs authorize → (login if asked) → code → token.
func codeFlow(cl *http.Client, issuer string, login bool) (string, error) {
	sum := sha256.Sum256([]byte(verifier))
	authz := issuer + "/authorize?" + url.Values{
		"client_id": {"app"}, "response_type": {"code"}, "redirect_uri": {"http://localhost:5555/cb"},
		"scope": {"openid profile email"}, "state": {"state-0123456789"}, "nonce": {"nonce-0123456789"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}.Encode()
	resp, err := cl.Get(authz)
	if err != nil {
		return "", err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if login {
		form := url.Values{"username": {userName}, "password": {userPass}}
		for _, m := range hidden.FindAllStringSubmatch(string(body), -1) {
			form.Set(m[1], m[2])
		}
		r, _ := http.NewRequest(http.MethodPost, issuer+"/login", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if resp, err = cl.Do(r); err != nil {
			return "", err
		}
		resp.Body.Close()
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		return "", fmt.Errorf("authorize: status %d, location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {"http://localhost:5555/cb"}, "code_verifier": {verifier}}
	r, _ := http.NewRequest(http.MethodPost, issuer+"/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth("app", appSecret)
	resp, err = cl.Do(r)
	if err != nil {
		return "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("token: status %d", resp.StatusCode)
	}
	return loc.Query().Get("code"), nil
}

// cpuTicks reads utime+stime of a process, in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return utime + stime, nil
}

// clockTicks is USER_HZ; 100 on Linux.
const clockTicks = 100

func measure(name string, pid, n, c int, op func() error) error {
	// Warm up (connections, caches), then measure.
	for range min(n/10, 200) {
		if err := op(); err != nil {
			return err
		}
	}
	before, err := cpuTicks(pid)
	if err != nil {
		return err
	}
	profiled := make(chan error, 1)
	if name == profileScenario {
		go func() { profiled <- fetchProfile(profileOut, 5) }()
	} else {
		profiled <- nil
	}
	start := time.Now()
	var wg sync.WaitGroup
	var left atomic.Int64
	left.Store(int64(n))
	errs := make(chan error, c)
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				if err := op(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	after, err := cpuTicks(pid)
	if err != nil {
		return err
	}
	if err := <-profiled; err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	cpu := time.Duration(after-before) * time.Second / clockTicks
	fmt.Printf("%-28s %10.0f %10.3f ms %14s\n", name, float64(n)/elapsed.Seconds(), float64(cpu.Microseconds())/1000/float64(n), cpu.Round(time.Millisecond))
	return nil
}

// fetchProfile saves a CPU profile of the server taken over seconds.
func fetchProfile(path string, seconds int) error {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", metricsPort, seconds))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// freshDatabase creates database name next to the one adminDSN names and
// returns its DSN and a function that drops it.
func freshDatabase(adminDSN, name string) (string, func(), error) {
	db, err := sql.Open("pgx", adminDSN)
	if err != nil {
		return "", nil, err
	}
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		db.Close()
		return "", nil, fmt.Errorf("create load database: %w", err)
	}
	u, err := url.Parse(adminDSN)
	if err != nil {
		db.Close()
		return "", nil, err
	}
	u.Path = "/" + name
	return u.String(), func() {
		_, _ = db.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		db.Close()
	}, nil
}
