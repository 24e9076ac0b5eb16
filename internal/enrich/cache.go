package enrich

import (
	"sync"
	"time"
)

// Cache is a map whose entries expire: lookups are reused within one warm container for a
// short time, so a burst of denials for the same key and role costs one set of AWS calls.
type Cache[V any] struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[string]entry[V]
}

type entry[V any] struct {
	v       V
	expires time.Time
}

// NewCache returns a cache whose entries live for ttl; now may be nil (time.Now).
func NewCache[V any](ttl time.Duration, now func() time.Time) *Cache[V] {
	if now == nil {
		now = time.Now
	}
	return &Cache[V]{ttl: ttl, now: now, entries: map[string]entry[V]{}}
}

// Get returns a live entry.
func (c *Cache[V]) Get(key string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || !c.now().Before(e.expires) {
		delete(c.entries, key)
		var zero V
		return zero, false
	}
	return e.v, true
}

// Put stores v under key. Expired entries are swept now and then so the map stays small.
func (c *Cache[V]) Put(key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.entries) >= 1024 {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
	}
	c.entries[key] = entry[V]{v: v, expires: now.Add(c.ttl)}
}
