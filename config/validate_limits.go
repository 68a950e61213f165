package config

// The checks of limits: how much the gateway takes on at once.

import (
	"strconv"
	"strings"
)

func (v *validator) limits(path string, f *limitsFile) Limits {
	l := Limits{
		LoginConcurrencyPerClient: v.positiveInt(path+".login_concurrency_per_client", f.LoginConcurrencyPerClient, DefaultLoginConcurrencyPerClient),
		LoginConcurrency:          v.positiveInt(path+".login_concurrency", f.LoginConcurrency, DefaultLoginConcurrency),
		IPv6ClientPrefix:          v.positiveInt(path+".ipv6_client_prefix", f.IPv6ClientPrefix, DefaultIPv6ClientPrefix),
	}
	if l.IPv6ClientPrefix < MinIPv6ClientPrefix || l.IPv6ClientPrefix > MaxIPv6ClientPrefix {
		v.add(path+".ipv6_client_prefix", "must be a prefix length from %d to %d (got %d)", MinIPv6ClientPrefix, MaxIPv6ClientPrefix, l.IPv6ClientPrefix)
		l.IPv6ClientPrefix = DefaultIPv6ClientPrefix
	}
	if l.LoginConcurrencyPerClient > l.LoginConcurrency {
		v.add(path+".login_concurrency_per_client", "must not exceed login_concurrency (%d > %d)", l.LoginConcurrencyPerClient, l.LoginConcurrency)
	}
	return l
}

func (v *validator) positiveInt(path, s string, def int) int {
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n <= 0 {
		v.add(path, "must be a positive whole number (got %q)", s)
		return def
	}
	return n
}
