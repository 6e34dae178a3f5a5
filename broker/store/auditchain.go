package store

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
)

// AuditHashSize is the length of PrevHash and Hash (SHA-256).
const AuditHashSize = sha256.Size

// AuditGenesis is the PrevHash of the first event of the chain: 32 zero
// bytes.
var AuditGenesis = make([]byte, AuditHashSize)

// auditEncodingVersion is the first byte of the canonical encoding, so that
// a future encoding cannot collide with this one.
const auditEncodingVersion = 1

// AppendAuditCanonical appends the canonical encoding of e to b and returns
// the extended slice. The encoding (version 1, docs/audit.md) is:
//
//	0x01                                   encoding version
//	uint64 big-endian  ID
//	int64  big-endian  Time as Unix microseconds (UTC; finer is dropped)
//	str(Type) str(Person) str(App) str(ClientAddr) str(Outcome) str(Reason) str(SessionID)
//	uint32 big-endian  number of Details entries
//	str(key) str(value) for each entry, keys sorted by their bytes
//
// where str(s) is the uint32 big-endian length of s in bytes followed by its
// bytes. PrevHash and Hash are not part of it. Every field is length-
// prefixed, so no two different events encode alike.
func AppendAuditCanonical(b []byte, e AuditEvent) []byte {
	b = append(b, auditEncodingVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(e.ID))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixMicro()))
	for _, s := range [...]string{e.Type, e.Person, e.App, e.ClientAddr, e.Outcome, e.Reason, e.SessionID} {
		b = appendStr(b, s)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.Details)))
	keys := make([]string, 0, len(e.Details))
	for k := range e.Details {
		keys = append(keys, k)
	}
	slices.Sort(keys) // Go compares strings bytewise
	for _, k := range keys {
		b = appendStr(b, k)
		b = appendStr(b, e.Details[k])
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// AuditEventHash returns SHA-256(prev || canonical encoding of e): the Hash
// of e when prev is the Hash of the event before it (AuditGenesis for the
// first). e.PrevHash and e.Hash are ignored.
func AuditEventHash(prev []byte, e AuditEvent) []byte {
	buf := make([]byte, 0, 256)
	buf = append(buf, prev...)
	buf = AppendAuditCanonical(buf, e)
	sum := sha256.Sum256(buf)
	return sum[:]
}
