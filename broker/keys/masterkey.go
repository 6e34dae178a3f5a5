package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// MasterKeySize is the length of the master key in bytes (AES-256).
const MasterKeySize = 32

// ErrNoMasterKey is returned by LoadMasterKey when neither source is set.
var ErrNoMasterKey = errors.New("keys: no master key configured")

// ErrWrongMasterKey is returned when a sealed signing key cannot be opened:
// the master key differs from the one that sealed it, or the record was
// altered (or moved to another row: the kid and alg are authenticated).
var ErrWrongMasterKey = errors.New("keys: cannot open sealed signing key: wrong master key or tampered record")

// LoadMasterKey decodes the master key from env, the value of an environment
// variable (the caller reads it, e.g. os.Getenv("GARDE_MASTER_KEY")), or from
// the contents of file. Exactly one of them must be set. The key is 32 random
// bytes encoded as hex (64 characters) or base64 (standard or URL alphabet,
// padded or not); surrounding white space is ignored.
//
// Error messages say where the key came from and what is wrong with it, never
// the key itself: they end up in logs.
func LoadMasterKey(env string, file string) ([]byte, error) {
	env = strings.TrimSpace(env)
	switch {
	case env != "" && file != "":
		// Two sources that might disagree: refuse rather than guess which
		// one seals the keys.
		return nil, errors.New("keys: master key given both in the environment and as a file; set only one")
	case env != "":
		return decodeMasterKey(env, "master key from the environment")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("keys: read master key file: %w", err)
		}
		return decodeMasterKey(strings.TrimSpace(string(b)), fmt.Sprintf("master key file %q", file))
	default:
		return nil, ErrNoMasterKey
	}
}

func decodeMasterKey(s, source string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("keys: %s is empty", source)
	}
	var key []byte
	if k, err := hex.DecodeString(s); err == nil {
		// Hex strings are also valid base64: anything that decodes as hex
		// is hex. (A base64-encoded 32-byte key never does: padded it has
		// '=', unpadded its length, 43, is odd.)
		key = k
	} else if len(s) == 2*MasterKeySize {
		return nil, fmt.Errorf("keys: %s is 64 characters long but not valid hex; expected %d random bytes as hex or base64", source, MasterKeySize)
	} else {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if k, err := enc.DecodeString(s); err == nil {
				key = k
				break
			}
		}
		if key == nil {
			return nil, fmt.Errorf("keys: %s is neither hex nor base64; expected %d random bytes as hex or base64 (e.g. `openssl rand -base64 32`)", source, MasterKeySize)
		}
	}
	if len(key) != MasterKeySize {
		return nil, fmt.Errorf("keys: %s decodes to %d bytes, want exactly %d (e.g. `openssl rand -base64 32`)", source, len(key), MasterKeySize)
	}
	return key, nil
}

// GenerateMasterKeyFile writes a fresh random master key, base64-encoded, to
// path with mode 0600, unless the file already exists (then it does nothing).
// Only the demo uses it: in production the operator provides the key, and
// losing it makes every stored signing key unreadable.
func GenerateMasterKeyFile(path string) error {
	// O_EXCL: never overwrite an existing key, even if two processes race.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("keys: create master key file: %w", err)
	}
	key := make([]byte, MasterKeySize)
	rand.Read(key) // never fails (crypto/rand panics instead)
	_, werr := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		// A half-written file would be read as a wrong key next time.
		os.Remove(path)
		return fmt.Errorf("keys: write master key file: %w", err)
	}
	return nil
}

// sealInfo is the HKDF purpose of the key that seals signing keys. The master
// key is not used directly, so that other uses of it (if any are added) get
// independent keys and cannot be confused with this one.
const sealInfo = "garde/keys: signing key sealing v1"

// sealVersion prefixes every sealed blob, so the format can change later.
const sealVersion = 1

func sealingKey(master []byte) (cipher.AEAD, error) {
	if len(master) != MasterKeySize {
		return nil, fmt.Errorf("keys: master key is %d bytes, want %d", len(master), MasterKeySize)
	}
	k, err := hkdf.Key(sha256.New, master, nil, sealInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("keys: derive sealing key: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return cipher.NewGCM(block)
}

// sealAAD binds a sealed blob to its row: a blob copied to another kid or
// alg does not open. (The separator keeps ("ab","c") apart from ("a","bc").)
func sealAAD(kid, alg string) []byte {
	return []byte("garde signing key\x00" + kid + "\x00" + alg)
}

// seal encrypts plaintext with AES-256-GCM under a random nonce; the output
// is version || nonce || ciphertext+tag. Random 96-bit nonces are safe here:
// a deployment seals a handful of keys a year, far below the 2^32 limit.
func seal(aead cipher.AEAD, plaintext []byte, kid, alg string) []byte {
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(plaintext)+aead.Overhead())
	out[0] = sealVersion
	rand.Read(out[1:])
	return aead.Seal(out, out[1:1+aead.NonceSize()], plaintext, sealAAD(kid, alg))
}

func open(aead cipher.AEAD, sealed []byte, kid, alg string) ([]byte, error) {
	n := aead.NonceSize()
	if len(sealed) < 1+n+aead.Overhead() || sealed[0] != sealVersion {
		return nil, fmt.Errorf("keys: sealed signing key %s has an unknown format", kid)
	}
	pt, err := aead.Open(nil, sealed[1:1+n], sealed[1+n:], sealAAD(kid, alg))
	if err != nil {
		return nil, ErrWrongMasterKey
	}
	return pt, nil
}
