package static

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters of HashPassword: RFC 9106 §4's second recommended
// option (for memory-constrained environments): 64 MiB, one pass, here
// with two lanes, 16-byte salt and 32-byte tag.
const (
	hashMemoryKiB = 64 * 1024
	hashTime      = 1
	hashThreads   = 2
	hashSaltLen   = 16
	hashKeyLen    = 32
)

// Bounds on the parameters accepted from configuration: a typo such as
// m=6553600 must be refused at start, not discovered as an out-of-memory
// crash at the first sign-in.
const (
	maxMemoryKiB = 1 << 20 // 1 GiB
	maxTime      = 16
	maxThreads   = 64
	minSaltLen   = 8
	maxSaltLen   = 64
	minKeyLen    = 16
	maxKeyLen    = 64
)

// phc is a parsed "$argon2id$v=19$m=65536,t=1,p=2$<salt>$<hash>" string
// (the PHC string format, base64 without padding).
type phc struct {
	memory  uint32 // KiB
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

var errPHC = errors.New("not a PHC argon2id hash ($argon2id$v=19$m=...,t=...,p=...$salt$hash)")

// parsePHC parses and bounds-checks an argon2id PHC string.
func parsePHC(s string) (phc, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return phc{}, errPHC
	}
	if parts[2] != "v=19" {
		return phc{}, fmt.Errorf("%w: unsupported version %q (want v=19)", errPHC, parts[2])
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return phc{}, fmt.Errorf("%w: parameters %q", errPHC, parts[3])
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(params[i], name+"=")
		if !ok || v == "" || (len(v) > 1 && v[0] == '0') {
			return phc{}, fmt.Errorf("%w: parameters %q", errPHC, parts[3])
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return phc{}, fmt.Errorf("%w: parameter %s=%q", errPHC, name, v)
		}
		vals[i] = n
	}
	p := phc{memory: uint32(vals[0]), time: uint32(vals[1])}
	switch {
	case vals[2] < 1 || vals[2] > maxThreads:
		return phc{}, fmt.Errorf("%w: p=%d out of 1..%d", errPHC, vals[2], maxThreads)
	case p.time < 1 || p.time > maxTime:
		return phc{}, fmt.Errorf("%w: t=%d out of 1..%d", errPHC, p.time, maxTime)
	case vals[0] < 8*vals[2] || p.memory > maxMemoryKiB:
		return phc{}, fmt.Errorf("%w: m=%d out of 8*p..%d", errPHC, p.memory, maxMemoryKiB)
	}
	p.threads = uint8(vals[2])
	var err error
	if p.salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[4]); err != nil ||
		len(p.salt) < minSaltLen || len(p.salt) > maxSaltLen {
		return phc{}, fmt.Errorf("%w: salt must be %d..%d bytes of unpadded base64", errPHC, minSaltLen, maxSaltLen)
	}
	if p.key, err = base64.RawStdEncoding.Strict().DecodeString(parts[5]); err != nil ||
		len(p.key) < minKeyLen || len(p.key) > maxKeyLen {
		return phc{}, fmt.Errorf("%w: hash must be %d..%d bytes of unpadded base64", errPHC, minKeyLen, maxKeyLen)
	}
	return p, nil
}

func (p phc) String() string {
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", p.memory, p.time, p.threads,
		base64.RawStdEncoding.EncodeToString(p.salt), base64.RawStdEncoding.EncodeToString(p.key))
}

// derive computes the argon2id tag of password with p's parameters and salt.
func (p phc) derive(password string) []byte {
	return argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
}

// HashPassword returns password hashed with argon2id in PHC form, for the
// static directory's configuration (garde hash-password).
func HashPassword(password string) (string, error) {
	return hashPassword(password, hashMemoryKiB, hashTime, hashThreads)
}

func hashPassword(password string, memory, time uint32, threads uint8) (string, error) {
	if password == "" {
		return "", errors.New("empty password")
	}
	salt := make([]byte, hashSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	p := phc{memory: memory, time: time, threads: threads, salt: salt, key: make([]byte, hashKeyLen)}
	p.key = p.derive(password)
	return p.String(), nil
}
