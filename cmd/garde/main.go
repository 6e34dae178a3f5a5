// Command garde is Garde, the single-sign-on identity broker for hospitals.
//
//	garde serve [--config FILE]   run Garde (the built-in demo without --config)
//	garde check-config FILE       validate a configuration file and exit
//	garde hash-password           read a password on stdin, print its argon2id hash
//	garde keys ...                list or revoke a person's keys, issue an enrollment code
//	garde policy test ...         explain the access decision for a hypothetical sign-in
//	garde version                 print the version
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/garde-sso/garde/cmd/garde/app"
	"github.com/garde-sso/garde/cmd/garde/config"
	"github.com/garde-sso/garde/connectors/static"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "check-config":
		return checkConfig(args[1:], stdout, stderr)
	case "hash-password":
		return hashPassword(stdin, stdout, stderr)
	case "keys":
		return keysCommand(args[1:], stdout, stderr)
	case "audit":
		return auditCommand(args[1:], stdout, stderr)
	case "policy":
		return policyCommand(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "garde", version)
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "garde: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Garde — single sign-on for hospitals

Usage:
  garde serve [--config FILE]   run Garde (without --config: the local demo)
  garde check-config FILE       validate a configuration file
  garde hash-password           read a password on stdin, print its argon2id hash
  garde keys list|revoke|issue-code --person SUB [--config FILE]
                                manage a person's security keys and enrollment codes
  garde audit verify [--config FILE]
                                check the audit trail's hash chain and signed checkpoints
  garde policy test --app ID [--person USERNAME] [--zone Z] [--level L] ...
                                explain the access decision for a hypothetical sign-in
  garde audit query [--person --app --type --outcome --since --until --addr --format table|csv|json|jsonl]
                                print or export audit events
  garde audit purge --before DATE [--yes]
                                delete audit events older than DATE, up to a signed checkpoint
  garde version                 print the version
`)
}

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Demo(), nil
	}
	return config.Load(path)
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (default: the built-in demo)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintf(stderr, "garde: configuration is not valid:\n%v\n", err)
		return 1
	}
	logger := newLogger(cfg, stderr)
	for _, w := range cfg.Warnings {
		logger.Warn("configuration: " + w)
	}
	if *path == "" {
		logger.Warn("running the built-in DEMO configuration: demo accounts and secrets, plain HTTP on localhost; never expose it")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.Build(ctx, cfg, app.Options{Logger: logger})
	if err != nil {
		logger.Error("garde could not start", "err", err)
		return 1
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Close(cctx); err != nil {
			logger.Error("shutdown", "err", err)
		}
	}()

	srv := &http.Server{
		Addr:              cfg.Listen.Address,
		Handler:           a.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	servers := []*http.Server{srv}
	errc := make(chan error, 2+len(a.CardServers()))
	go func() {
		if cfg.Listen.TLS != nil {
			logger.Info("garde listening (HTTPS)", "address", srv.Addr, "issuer", cfg.Issuer)
			errc <- srv.ListenAndServeTLS(cfg.Listen.TLS.CertFile, cfg.Listen.TLS.KeyFile)
			return
		}
		logger.Info("garde listening (HTTP)", "address", srv.Addr, "issuer", cfg.Issuer)
		errc <- srv.ListenAndServe()
	}()
	// Card listeners: the same handler, over TLS that asks for the CPS
	// card's certificate. The configuration guarantees listen.tls.
	for _, cs := range a.CardServers() {
		cert, err := tls.LoadX509KeyPair(cfg.Listen.TLS.CertFile, cfg.Listen.TLS.KeyFile)
		if err != nil {
			logger.Error("card listener: server certificate", "err", err)
			return 1
		}
		csrv := &http.Server{
			Addr: cs.Address, Handler: a.Handler, TLSConfig: cs.TLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}}),
			ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
			IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
			ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		}
		servers = append(servers, csrv)
		go func() {
			logger.Info("card sign-in listening (HTTPS, client certificates)", "address", csrv.Addr)
			errc <- csrv.ListenAndServeTLS("", "")
		}()
	}
	if cfg.Listen.MetricsAddress != "" {
		msrv := &http.Server{Addr: cfg.Listen.MetricsAddress, Handler: metricsMux(a), ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, msrv)
		go func() {
			logger.Info("metrics listening", "address", msrv.Addr)
			errc <- msrv.ListenAndServe()
		}()
	}
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			logger.Error("listener failed", "err", err)
			return 1
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(sctx)
	}
	return 0
}

// metricsMux serves the operators' listener: Prometheus metrics, and the
// Go profiler for measuring CPU per request under load. It must stay on an
// internal address (the default is loopback).
func metricsMux(a *app.App) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.Metrics)
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	return mux
}

func checkConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: garde check-config FILE")
		return 2
	}
	cfg, err := config.Load(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	fmt.Fprintf(stdout, "%s: configuration is valid (%d connectors, %d clients)\n", args[0], len(cfg.Connectors), len(cfg.Clients))
	// The same fingerprint is in the config.loaded audit event of every
	// start: which rules were in force, and when they changed.
	fmt.Fprintf(stdout, "access policies sha256 %s\n", app.PolicyFingerprint(cfg))
	return 0
}

func hashPassword(stdin io.Reader, stdout, stderr io.Writer) int {
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(stderr, "garde: reading the password:", err)
		return 1
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		fmt.Fprintln(stderr, "garde: empty password")
		return 1
	}
	h, err := static.HashPassword(pw)
	if err != nil {
		fmt.Fprintln(stderr, "garde:", err)
		return 1
	}
	fmt.Fprintln(stdout, h)
	return 0
}
