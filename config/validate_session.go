package config

// The checks of session: the cookie keys and lifetimes, and secrets from files or the environment.

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

const maxSessionLifetime = 30 * 24 * time.Hour

func (v *validator) session(path string, f *sessionFile) Session {
	s := Session{
		Lifetime:     v.duration(path+".lifetime", f.Lifetime, DefaultSessionLifetime),
		CacheEntries: DefaultSessionCacheEntries,
		CacheMiB:     v.positiveInt(path+".cache_mib", f.CacheMiB, DefaultSessionCacheMiB),
	}
	if c := strings.TrimSpace(f.CacheEntries); c != "" {
		if n, err := strconv.Atoi(c); err != nil || n < 0 {
			v.add(path+".cache_entries", "must be a whole number, 0 for no cache (got %q)", f.CacheEntries)
		} else {
			s.CacheEntries = n
		}
	}
	if s.Lifetime > maxSessionLifetime {
		v.add(path+".lifetime", "must be at most %s (got %s)", maxSessionLifetime, s.Lifetime)
	}
	if len(f.Keys) == 0 {
		v.add(path+".keys", "at least one key is required")
	}
	for i, k := range f.Keys {
		p := fmt.Sprintf("%s.keys[%d]", path, i)
		hash := v.secret(p, "hash_key", k.HashKey, k.HashKeyFile, k.HashKeyEnv, 32, 64)
		block := v.secret(p, "block_key", k.BlockKey, k.BlockKeyFile, k.BlockKeyEnv, 16, 24, 32)
		if hash != nil && block != nil {
			s.Keys = append(s.Keys, SessionKey{Hash: hash, Block: block})
		}
	}
	return s
}

// secret reads a base64 key given inline (name), from a file (name_file) or
// from an environment variable (name_env): exactly one of them.
func (v *validator) secret(path, name, inline, fileName, envName string, lengths ...int) []byte {
	encoded, key := v.secretString(path, name, inline, fileName, envName, true)
	if key == "" {
		return nil
	}
	hint := fmt.Sprintf("generate one with: openssl rand -base64 %d", lengths[len(lengths)-1])
	encoded = strings.TrimSpace(encoded)
	if looksHex(encoded) {
		// "openssl rand -hex 32" is a common slip. Its digits are valid
		// base64 too, but decode to the wrong length, or to a key with
		// far fewer random bits than its length suggests.
		v.add(key, "looks like hex, want base64 (%s)", hint)
		return nil
	}
	raw, err := decodeBase64(encoded)
	if err != nil {
		v.add(key, "not valid base64 (%s)", hint)
		return nil
	}
	for _, n := range lengths {
		if len(raw) == n {
			return raw
		}
	}
	v.add(key, "decodes to %d bytes, want %s (%s)", len(raw), orList(lengths), hint)
	return nil
}

// looksHex reports whether s is a string of hex digits long enough to be a
// key. A random base64 key (22 characters or more) is all hex digits with a
// probability below 2^-33, a 32-byte one below 2^-67.
func looksHex(s string) bool {
	if len(s) < 22 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// secretString reads a secret given inline (name), from a file (name_file)
// or from an environment variable (name_env). With required, exactly one
// must be set; otherwise at most one. It returns the secret and the key
// path it came from, or an empty path when there is none (or it is bad).
func (v *validator) secretString(path, name, inline, fileName, envName string, required bool) (string, string) {
	set := 0
	for _, s := range []string{inline, fileName, envName} {
		if s != "" {
			set++
		}
	}
	switch {
	case set == 0 && !required:
		return "", ""
	case set != 1 && required:
		v.add(path, "exactly one of %s, %s_file and %s_env is required", name, name, name)
		return "", ""
	case set > 1:
		v.add(path, "set at most one of %s, %s_file and %s_env", name, name, name)
		return "", ""
	}
	switch {
	case inline != "":
		return inline, path + "." + name
	case fileName != "":
		key := path + "." + name + "_file"
		data := v.readFile(key, fileName)
		if data == nil {
			return "", ""
		}
		return strings.TrimSpace(string(data)), key
	default:
		key := path + "." + name + "_env"
		val, ok := v.env(envName)
		if !ok || val == "" {
			v.add(key, "environment variable %s is not set", envName)
			return "", ""
		}
		return strings.TrimSpace(val), key
	}
}

// decodeBase64 accepts standard and URL-safe base64, with or without
// padding: operators paste keys from many tools.
func decodeBase64(s string) ([]byte, error) {
	var firstErr error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(s)
		if err == nil {
			return b, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

func orList(ns []int) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = strconv.Itoa(n)
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " or " + parts[len(parts)-1]
}
