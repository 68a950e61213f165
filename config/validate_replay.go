package config

// The checks of replay_cache: where assertion IDs are remembered.

import (
	"net/url"
)

// replayCache checks the Redis URL without ever echoing it: it may hold a
// password.
func (v *validator) replayCache(path string, f *replayFile) ReplayCache {
	raw, key := v.secretString(path, "redis_url", f.RedisURL, f.RedisURLFile, f.RedisURLEnv, false)
	if key == "" {
		return ReplayCache{}
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		v.add(key, "not a URL")
	case u.Scheme != "redis" && u.Scheme != "rediss":
		v.add(key, "must be a redis:// or rediss:// (TLS) URL")
	case u.Hostname() == "":
		v.add(key, "must name a host")
	default:
		return ReplayCache{RedisURL: raw}
	}
	return ReplayCache{}
}
