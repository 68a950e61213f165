package config

// The types in this file mirror the YAML document as written. Every scalar
// is a string or a *bool, so that decoding never fails on a value: values are
// parsed in validate, where a bad one becomes a problem with its key path
// instead of aborting the whole decode. Pointers tell "absent" from "false".

type file struct {
	PublicURL       string           `yaml:"public_url"`
	Listen          string           `yaml:"listen"`
	TLS             *tlsFile         `yaml:"tls"`
	AdminListen     string           `yaml:"admin_listen"`
	Upstream        string           `yaml:"upstream"`
	UpstreamHost    string           `yaml:"upstream_host"`
	UpstreamTimeout string           `yaml:"upstream_timeout"`
	ShutdownTimeout string           `yaml:"shutdown_timeout"`
	ShutdownDelay   string           `yaml:"shutdown_delay"`
	TrustedProxies  []string         `yaml:"trusted_proxies"`
	AllowInsecure   *bool            `yaml:"allow_insecure_http"`
	Limits          limitsFile       `yaml:"limits"`
	ReplayCache     replayFile       `yaml:"replay_cache"`
	SP              spFile           `yaml:"sp"`
	Session         sessionFile      `yaml:"session"`
	IdentityJWT     *identityJWTFile `yaml:"identity_jwt"`
	Tenants         []tenantFile     `yaml:"tenants"`
	Log             logFile          `yaml:"log"`
	GC              gcFile           `yaml:"gc"`
}

type gcFile struct {
	GOGC             string `yaml:"gogc"`
	MemoryLimitRatio string `yaml:"memory_limit_ratio"`
}

type tlsFile struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

type limitsFile struct {
	LoginConcurrencyPerClient string `yaml:"login_concurrency_per_client"`
	LoginConcurrency          string `yaml:"login_concurrency"`
	IPv6ClientPrefix          string `yaml:"ipv6_client_prefix"`
}

type replayFile struct {
	RedisURL     string `yaml:"redis_url"`
	RedisURLFile string `yaml:"redis_url_file"`
	RedisURLEnv  string `yaml:"redis_url_env"`
}

type spFile struct {
	CertFile         string `yaml:"cert_file"`
	KeyFile          string `yaml:"key_file"`
	PreviousCertFile string `yaml:"previous_cert_file"`
	PreviousKeyFile  string `yaml:"previous_key_file"`
}

type sessionFile struct {
	Lifetime     string           `yaml:"lifetime"`
	Keys         []sessionKeyFile `yaml:"keys"`
	CacheEntries string           `yaml:"cache_entries"`
	CacheMiB     string           `yaml:"cache_mib"`
}

type sessionKeyFile struct {
	HashKey      string `yaml:"hash_key"`
	HashKeyFile  string `yaml:"hash_key_file"`
	HashKeyEnv   string `yaml:"hash_key_env"`
	BlockKey     string `yaml:"block_key"`
	BlockKeyFile string `yaml:"block_key_file"`
	BlockKeyEnv  string `yaml:"block_key_env"`
}

type identityJWTFile struct {
	KeyFile         string `yaml:"key_file"`
	PreviousKeyFile string `yaml:"previous_key_file"`
	Audience        string `yaml:"audience"`
	Lifetime        string `yaml:"lifetime"`
}

type tenantFile struct {
	ID                 string            `yaml:"id"`
	EntraTenantID      string            `yaml:"entra_tenant_id"`
	IDPMetadataFile    string            `yaml:"idp_metadata_file"`
	IDPMetadataURL     string            `yaml:"idp_metadata_url"`
	IDPMetadataRefresh string            `yaml:"idp_metadata_refresh_interval"`
	IDPMetadataSigner  string            `yaml:"idp_metadata_signing_cert"`
	Hosts              []string          `yaml:"hosts"`
	SAMLURLsOnHost     *bool             `yaml:"saml_urls_on_host"`
	EmailDomains       []string          `yaml:"email_domains"`
	AllowedGroups      []string          `yaml:"allowed_groups"`
	AllowIDPInitiated  *bool             `yaml:"allow_idp_initiated"`
	DefaultRelayState  string            `yaml:"default_relay_state"`
	NameIDFormat       string            `yaml:"nameid_format"`
	AllowSHA1          *bool             `yaml:"allow_sha1"`
	SessionAttributes  []string          `yaml:"session_attributes"`
	Headers            map[string]string `yaml:"headers"`
}

type logFile struct {
	Level                string `yaml:"level"`
	Format               string `yaml:"format"`
	Access               *bool  `yaml:"access"`
	DebugAssertionTenant string `yaml:"debug_assertion_tenant"`
}
