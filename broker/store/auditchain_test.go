package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"
)

// The encoding documented in docs/audit.md, byte by byte.
func TestAuditCanonical(t *testing.T) {
	e := AuditEvent{
		ID:   258,
		Time: time.Date(1970, 1, 1, 1, 0, 1, 2500, time.FixedZone("X", 3600)), // 00:00:01.0000025 UTC: 1000002 µs
		Type: "t", Person: "pé", App: "", ClientAddr: "", Outcome: "ok", Reason: "", SessionID: "s",
		Details:  map[string]string{"b": "2", "a": "1", "": ""},
		PrevHash: []byte("ignored"), Hash: []byte("ignored"),
	}
	want, _ := hex.DecodeString("01" +
		"0000000000000102" + // id
		"00000000000f4242" + // time, µs
		"0000000174" + "00000003" + "70c3a9" + "00000000" + "00000000" + "00000002" + "6f6b" + "00000000" + "0000000173" +
		"00000003" + // details
		"00000000" + "00000000" + // "" = ""
		"0000000161" + "0000000131" + // a = 1
		"0000000162" + "0000000132") // b = 2
	got := AppendAuditCanonical(nil, e)
	if !bytes.Equal(got, want) {
		t.Fatalf("canonical =\n%x\nwant\n%x", got, want)
	}
	prev := bytes.Repeat([]byte{0xab}, 32)
	sum := sha256.Sum256(append(append([]byte(nil), prev...), want...))
	if h := AuditEventHash(prev, e); !bytes.Equal(h, sum[:]) {
		t.Fatalf("AuditEventHash = %x, want %x", h, sum)
	}
	// Field boundaries matter: moving a byte between fields changes it.
	f := e
	f.Person, f.App = "p", "é"
	if bytes.Equal(AppendAuditCanonical(nil, f), got) {
		t.Fatal("two events encode alike")
	}
	if len(AuditGenesis) != 32 || !bytes.Equal(AuditGenesis, make([]byte, 32)) {
		t.Fatal("genesis is not 32 zero bytes")
	}
}
