package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/garde-sso/garde/broker/audit"
	"github.com/garde-sso/garde/broker/keys"
	"github.com/garde-sso/garde/broker/store"
	"github.com/garde-sso/garde/cmd/garde/app"
	"github.com/garde-sso/garde/cmd/garde/config"
)

const auditUsage = `usage:
  garde audit verify [--config FILE]
  garde audit query  [--config FILE] [--person SUB] [--app ID] [--type T[,T...]] [--outcome success|failure]
                     [--since TIME] [--until TIME] [--addr IP|CIDR] [--after ID] [--limit N] [--format table|csv|json|jsonl]
  garde audit purge  --before TIME [--config FILE] [--yes]`

// auditCommand reads and maintains the audit trail (docs/audit.md):
//
//	garde audit verify   check the hash chain and the signed checkpoints
//	garde audit query    print or export events
//	garde audit purge    delete events older than a date, keeping the rest verifiable
//
// Exit status 0 on success, 1 when something is broken or fails, 2 on a
// usage error.
func auditCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, auditUsage)
		return 2
	}
	switch args[0] {
	case "verify":
		return auditVerify(args[1:], stdout, stderr)
	case "query":
		return auditQuery(args[1:], stdout, stderr)
	case "purge":
		return auditPurge(args[1:], stdout, stderr)
	default:
		fmt.Fprintln(stderr, auditUsage)
		return 2
	}
}

// openAuditStore loads the configuration and opens its durable store.
func openAuditStore(path string, stderr io.Writer) (*config.Config, store.Durable, bool) {
	cfg, err := loadConfig(path)
	if err != nil {
		fmt.Fprintf(stderr, "garde: configuration is not valid:\n%v\n", err)
		return nil, nil, false
	}
	db, err := app.OpenDurable(context.Background(), cfg, "")
	if err != nil {
		fmt.Fprintln(stderr, "garde:", err)
		return nil, nil, false
	}
	return cfg, db, true
}

func auditVerify(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("audit verify", stderr)
	path := fs.String("config", "", "configuration file (default: the built-in demo)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, auditUsage)
		return 2
	}
	cfg, db, ok := openAuditStore(*path, stderr)
	if !ok {
		return 1
	}
	defer db.Close()
	ctx := context.Background()

	chain, err := db.VerifyAuditChain(ctx, 0)
	if err != nil {
		fmt.Fprintln(stderr, "garde:", err)
		return 1
	}
	if chain.Problem != "" {
		fmt.Fprintf(stdout, "audit chain BROKEN: event %d %s (%d events intact before it)\n",
			chain.FirstBad, chain.Problem, chain.Checked)
		return 1
	}

	master, err := auditMasterKey(cfg)
	if err != nil {
		fmt.Fprintf(stdout, "audit chain intact: %d events; checkpoints NOT verified\n", chain.Checked)
		fmt.Fprintln(stderr, "garde: cannot verify the checkpoints without the master key:", err)
		return 1
	}
	pub := audit.DeriveCheckpointKey(master).Public().(ed25519.PublicKey)
	cps, err := audit.VerifyCheckpoints(ctx, db, pub)
	if err != nil {
		fmt.Fprintln(stderr, "garde:", err)
		return 1
	}
	switch cps.Problem {
	case "":
	case audit.CheckpointAnchorUnsigned:
		fmt.Fprintf(stdout, "audit trail BROKEN: it starts after event %d, but no valid checkpoint signs that event (a checkpoint was deleted, or the purge was faked)\n", cps.EventID)
		return 1
	case audit.CheckpointPurgeUnrecorded:
		fmt.Fprintf(stdout, "audit trail BROKEN: events up to %d were deleted without an audit.purged event recording it\n", cps.EventID)
		return 1
	default:
		fmt.Fprintf(stdout, "audit checkpoint %d BROKEN: %s (it signs event %d; %d checkpoints good before it)\n",
			cps.FirstBad, cps.Problem, cps.EventID, cps.Checked)
		return 1
	}
	fmt.Fprintf(stdout, "audit chain intact: %d events, %d checkpoints\n", chain.Checked, cps.Checked)
	if chain.Anchor > 0 {
		fmt.Fprintf(stdout, "note: events up to %d were purged; the chain verifies from the signed checkpoint of event %d\n", chain.Anchor, chain.Anchor)
	} else if chain.Start > 1 {
		fmt.Fprintf(stdout, "note: events before %d were written before the chain existed and are not covered\n", chain.Start)
	}
	if unsigned := chain.LastID - cps.Latest.EventID; chain.LastID > 0 && unsigned > 0 {
		fmt.Fprintf(stdout, "note: the last %d events are not covered by a checkpoint yet\n", unsigned)
	}
	return 0
}

// parseAuditTime reads a date (2026-03-14, midnight UTC) or an RFC 3339
// time.
func parseAuditTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a date (2026-03-14) or an RFC 3339 time (2026-03-14T08:00:00+01:00)", s)
}

func auditQuery(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("audit query", stderr)
	path := fs.String("config", "", "configuration file (default: the built-in demo)")
	var q store.AuditQuery
	fs.StringVar(&q.Person, "person", "", "the person's subject (sub)")
	fs.StringVar(&q.App, "app", "", "the application's client id or entity id")
	types := fs.String("type", "", "event types, comma-separated (signin.failure,token.reuse_detected)")
	fs.StringVar(&q.Outcome, "outcome", "", "success or failure")
	since := fs.String("since", "", "from this date or time, inclusive")
	until := fs.String("until", "", "to this date or time, exclusive")
	fs.StringVar(&q.ClientAddr, "addr", "", "client address, or a CIDR prefix (10.1.0.0/16)")
	fs.Int64Var(&q.AfterID, "after", 0, "only events after this ID (to page)")
	fs.IntVar(&q.Limit, "limit", 1000, "at most this many events (0: all)")
	format := fs.String("format", audit.FormatTable, "table, csv, json or jsonl")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	usage := func(msg string) int {
		fmt.Fprintln(stderr, "garde audit query:", msg)
		return 2
	}
	if fs.NArg() > 0 {
		return usage("unexpected arguments " + strings.Join(fs.Args(), " "))
	}
	if *types != "" {
		for _, t := range strings.Split(*types, ",") {
			if t = strings.TrimSpace(t); t != "" {
				q.Types = append(q.Types, t)
			}
		}
	}
	if q.Outcome != "" && q.Outcome != audit.Success && q.Outcome != audit.Failure {
		return usage(fmt.Sprintf("--outcome %q: expected success or failure", q.Outcome))
	}
	var err error
	if *since != "" {
		if q.Since, err = parseAuditTime(*since); err != nil {
			return usage("--since " + err.Error())
		}
	}
	if *until != "" {
		if q.Until, err = parseAuditTime(*until); err != nil {
			return usage("--until " + err.Error())
		}
	}
	if q.ClientAddr != "" {
		if _, err := store.ParseAuditAddrFilter(q.ClientAddr); err != nil {
			return usage("--addr: " + err.Error())
		}
	}
	if q.Limit < 0 {
		return usage("--limit must be 0 or more")
	}
	if !strings.Contains(" "+strings.Join(audit.Formats, " ")+" ", " "+*format+" ") {
		return usage(fmt.Sprintf("--format %q: expected one of %s", *format, strings.Join(audit.Formats, ", ")))
	}
	_, db, ok := openAuditStore(*path, stderr)
	if !ok {
		return 1
	}
	defer db.Close()
	if err := audit.Export(stdout, *format, audit.Query(context.Background(), db, q)); err != nil {
		fmt.Fprintln(stderr, "garde:", err)
		return 1
	}
	return 0
}

func auditPurge(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("audit purge", stderr)
	path := fs.String("config", "", "configuration file (default: the built-in demo)")
	before := fs.String("before", "", "purge events older than this date or time (required)")
	yes := fs.Bool("yes", false, "purge without asking (for scripts)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *before == "" {
		fmt.Fprintln(stderr, auditUsage)
		return 2
	}
	cutoff, err := parseAuditTime(*before)
	if err != nil {
		fmt.Fprintln(stderr, "garde audit purge: --before", err)
		return 2
	}
	if cutoff.After(time.Now()) {
		fmt.Fprintln(stderr, "garde audit purge: --before is in the future; expected a past date")
		return 2
	}
	cfg, db, ok := openAuditStore(*path, stderr)
	if !ok {
		return 1
	}
	defer db.Close()
	master, err := auditMasterKey(cfg)
	if err != nil {
		// Without the key the checkpoints cannot be checked, and the cut
		// must be made at a checkpoint that verifies.
		fmt.Fprintln(stderr, "garde: cannot purge without the master key:", err)
		return 1
	}
	if !*yes {
		fmt.Fprintf(stderr, "garde: this deletes audit events older than %s for good; run again with --yes to do it\n", cutoff.UTC().Format(time.RFC3339))
		return 1
	}
	pub := audit.DeriveCheckpointKey(master).Public().(ed25519.PublicKey)
	res, err := audit.NewPurger(db, pub, nil, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))).PurgeAuditEvents(context.Background(), cutoff)
	if err != nil {
		fmt.Fprintln(stderr, "garde:", err)
		if errors.Is(err, audit.ErrChainBroken) {
			fmt.Fprintln(stderr, "garde: run garde audit verify; nothing was purged")
		}
		return 1
	}
	if res.Through == 0 {
		fmt.Fprintln(stdout, "nothing to purge: no signed checkpoint of an event older than the date")
		return 0
	}
	fmt.Fprintf(stdout, "purged %d events (%d to %d); the trail now starts after the checkpoint of event %d\n", res.Deleted, res.From, res.Through, res.Through)
	return 0
}

// auditMasterKey loads the master key from where the configuration says,
// as the server does, but never generates one: a verifier that created a
// new key would only report every checkpoint as made by another key.
func auditMasterKey(cfg *config.Config) ([]byte, error) {
	mk := cfg.MasterKey
	env := ""
	if mk.Env != "" {
		env = os.Getenv(mk.Env)
		if env == "" && mk.File == "" {
			return nil, fmt.Errorf("environment variable %s is not set", mk.Env)
		}
	}
	key, err := keys.LoadMasterKey(env, mk.File)
	if errors.Is(err, keys.ErrNoMasterKey) {
		return nil, errors.New("no master key configured (master_key.env or master_key.file)")
	}
	return key, err
}
