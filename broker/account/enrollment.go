package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"time"

	"github.com/garde-sso/garde/broker/flow"
	"github.com/garde-sso/garde/broker/store"
)

// IssueEnrollmentCode creates a one-time enrollment code for subject,
// valid for lifetime from now, and returns it with its expiry. Only the
// code's SHA-256 is stored. `garde keys issue-code` and the admin console
// both issue codes through it; the caller audits.
func IssueEnrollmentCode(ctx context.Context, codes store.EnrollmentCodes, subject, by string, lifetime time.Duration, now time.Time) (string, time.Time, error) {
	if subject == "" {
		return "", time.Time{}, fmt.Errorf("enrollment code: no person")
	}
	code := NewEnrollmentCode()
	sum := sha256.Sum256([]byte(flow.NormalizeCode(code)))
	now = now.UTC()
	exp := now.Add(lifetime)
	if err := codes.CreateEnrollmentCode(ctx, store.EnrollmentCode{Hash: sum[:], Subject: subject, CreatedBy: by, CreatedAt: now, ExpiresAt: exp}); err != nil {
		return "", time.Time{}, fmt.Errorf("store enrollment code: %w", err)
	}
	return code, exp, nil
}

// NewEnrollmentCode returns 80 random bits as 16 base32 characters in four
// groups: easy to read out and type, impossible to guess (and guesses are
// throttled).
func NewEnrollmentCode() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	s := base32.StdEncoding.EncodeToString(b)
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
}
