package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os/user"
	"time"

	"github.com/garde-sso/garde/broker/account"
	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/cmd/garde/app"
)

// keysCommand administers people's security keys:
//
//	garde keys list       --person SUB [--config FILE]
//	garde keys revoke     --person SUB [--config FILE] [--by NAME]
//	garde keys issue-code --person SUB [--config FILE] [--by NAME]
func keysCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: garde keys list|revoke|issue-code --person SUB [--config FILE] [--by NAME]")
		return 2
	}
	sub := args[0]
	fs := flagSet("keys "+sub, stderr)
	path := fs.String("config", "", "configuration file (default: the built-in demo)")
	person := fs.String("person", "", "the person's subject, as in tokens (e.g. ad:3f2504e0-...)")
	by := fs.String("by", currentUser(), "who is doing this, for the audit trail")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *person == "" {
		fmt.Fprintln(stderr, "garde keys: --person is required")
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintf(stderr, "garde: configuration is not valid:\n%v\n", err)
		return 1
	}
	ctx := context.Background()
	db, err := app.OpenDurable(ctx, cfg, "")
	if err != nil {
		fmt.Fprintln(stderr, "garde:", err)
		return 1
	}
	defer db.Close()
	record := func(e store.AuditEvent) error {
		e.Time = time.Now().UTC()
		e.App = "garde-cli"
		if e.Details == nil {
			e.Details = map[string]string{}
		}
		e.Details["by"] = *by
		return db.AppendAuditEvents(ctx, []store.AuditEvent{e})
	}
	switch sub {
	case "list":
		creds, err := db.ListWebAuthnCredentials(ctx, *person)
		if err != nil {
			fmt.Fprintln(stderr, "garde:", err)
			return 1
		}
		if len(creds) == 0 {
			fmt.Fprintf(stdout, "%s has no security key\n", *person)
		}
		for _, c := range creds {
			kind := "hardware"
			if c.BackupEligible {
				kind = "synced"
			}
			flag := ""
			if c.Flagged {
				flag = "  FLAGGED (possible clone)"
			}
			last := "never"
			if !c.LastUsedAt.IsZero() {
				last = c.LastUsedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(stdout, "%s  %-24q %-8s aaguid=%s created=%s last_used=%s%s\n",
				shortID(c.ID), c.Name, kind, hex.EncodeToString(c.AAGUID), c.CreatedAt.Format(time.RFC3339), last, flag)
		}
		return 0
	case "revoke":
		n, err := db.DeleteWebAuthnCredentialsOf(ctx, *person)
		if err != nil {
			fmt.Fprintln(stderr, "garde:", err)
			return 1
		}
		if err := record(store.AuditEvent{Type: audit.KeysRevoked, Person: *person, Outcome: audit.Success,
			Details: map[string]string{"count": fmt.Sprint(n)}}); err != nil {
			fmt.Fprintln(stderr, "garde: audit:", err)
			return 1
		}
		fmt.Fprintf(stdout, "revoked %d security key(s) of %s\n", n, *person)
		return 0
	case "issue-code":
		code, exp, err := account.IssueEnrollmentCode(ctx, db, *person, *by, cfg.WebAuthn.Enrollment.CodeLifetime, time.Now())
		if err != nil {
			fmt.Fprintln(stderr, "garde:", err)
			return 1
		}
		if err := record(store.AuditEvent{Type: audit.EnrollmentCodeIssued, Person: *person, Outcome: audit.Success,
			Details: map[string]string{"expires": exp.Format(time.RFC3339)}}); err != nil {
			fmt.Fprintln(stderr, "garde: audit:", err)
			return 1
		}
		fmt.Fprintf(stdout, "Enrollment code for %s (single use, valid until %s):\n\n    %s\n\n", *person, exp.Format(time.RFC3339), code)
		fmt.Fprintln(stdout, "Give it to the person in hand (printed, never by e-mail). They enter it on the key page after signing in.")
		return 0
	}
	fmt.Fprintf(stderr, "garde keys: unknown subcommand %q\n", sub)
	return 2
}

func shortID(id []byte) string {
	h := hex.EncodeToString(id)
	if len(h) > 16 {
		return h[:16]
	}
	return h
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "unknown"
}

func flagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
