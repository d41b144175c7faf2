package service

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"math"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// secretDigest holds a secret as an HMAC under a key of this process only, so that a guess is
// compared with it as two digests of fixed length: the time a comparison takes tells nothing
// of the secret's length or of how many leading bytes matched.
type secretDigest struct {
	key []byte
	sum []byte // nil when no secret is set
}

func newSecretDigest(key, secret []byte) secretDigest {
	d := secretDigest{key: key}
	if len(secret) > 0 {
		d.sum = d.of(secret)
	}
	return d
}

func (d secretDigest) of(b []byte) []byte {
	mac := hmac.New(sha256.New, d.key)
	mac.Write(b)
	return mac.Sum(nil)
}

// set reports whether a secret is configured.
func (d secretDigest) set() bool { return d.sum != nil }

// equal reports whether guess is the secret; never true when no secret is set.
func (d secretDigest) equal(guess []byte) bool {
	return d.sum != nil && hmac.Equal(d.of(guess), d.sum)
}

// throttle limits failed authentication attempts per client address: each address has a
// bucket of `burst` attempts that refills at burst per window. While it is empty, the address
// is refused with 429 before its credentials are looked at, so guessing stays slow even when a
// guess would be right.
type throttle struct {
	mu      sync.Mutex
	burst   float64
	window  time.Duration
	max     int
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
	// warned is set once the address has been told to wait, so that the log gets one line per
	// throttled spell rather than one per refused request.
	warned bool
}

func newThrottle(perWindow int, window time.Duration, maxAddrs int) *throttle {
	return &throttle{burst: float64(perWindow), window: window, max: maxAddrs, buckets: map[string]*bucket{}}
}

// refill brings b up to now and returns it.
func (t *throttle) refill(b *bucket, now time.Time) {
	if el := now.Sub(b.at); el > 0 {
		b.tokens = math.Min(t.burst, b.tokens+t.burst*el.Seconds()/t.window.Seconds())
		b.at = now
	}
}

// wait returns how long addr must wait before its next attempt (0: it may try now) and
// whether this is the first refusal of a spell (to be logged at warn level).
func (t *throttle) wait(addr string, now time.Time) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buckets[addr]
	if b == nil {
		return 0, false
	}
	t.refill(b, now)
	if b.tokens >= 1 {
		b.warned = false
		return 0, false
	}
	first := !b.warned
	b.warned = true
	need := (1 - b.tokens) * t.window.Seconds() / t.burst
	return time.Duration(math.Ceil(need)) * time.Second, first
}

// fail records a failed attempt of addr and returns how many attempts it has left.
func (t *throttle) fail(addr string, now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buckets[addr]
	if b == nil {
		if len(t.buckets) >= t.max {
			t.prune(now)
		}
		b = &bucket{tokens: t.burst, at: now}
		t.buckets[addr] = b
	}
	t.refill(b, now)
	b.tokens = math.Max(b.tokens-1, 0)
	return int(b.tokens)
}

// prune forgets addresses whose bucket is full again, and one more when that frees nothing.
func (t *throttle) prune(now time.Time) {
	for k, b := range t.buckets {
		if t.refill(b, now); b.tokens >= t.burst {
			delete(t.buckets, k)
		}
	}
	for k := range t.buckets {
		if len(t.buckets) < t.max {
			break
		}
		delete(t.buckets, k)
	}
}

// clientAddr is the address the throttle counts for r: the peer's IP, or its /64 for IPv6
// (one host usually holds a whole /64). Behind a proxy or ingress every client shares the
// proxy's address.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// Status page sessions.
const (
	sessionCookie = "scimbridge_session"
	// sessionTTL is how long a sign-in lasts.
	sessionTTL = 12 * time.Hour
	// maxSessions bounds the sessions kept; the oldest goes first.
	maxSessions = 1000
)

// sessions are the status page's sign-ins, in memory: a restart signs everyone out. A session
// id is 32 random bytes; the CSRF token of its forms is an HMAC of the id under the process's
// key, so that it can be checked without storing it.
type sessions struct {
	mu   sync.Mutex
	key  []byte
	byID map[string]time.Time // digest of the session id -> expiry
}

func newSessions(key []byte) *sessions {
	return &sessions{key: key, byID: map[string]time.Time{}}
}

func (s *sessions) digest(id string) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte("session\x00" + id))
	return string(mac.Sum(nil))
}

// start returns a new session id valid until now+sessionTTL.
func (s *sessions) start(now time.Time) string {
	id := base64.RawURLEncoding.EncodeToString(randomBytes(32))
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byID) >= maxSessions {
		var oldest string
		var oldestExp time.Time
		for k, exp := range s.byID {
			if !now.Before(exp) {
				delete(s.byID, k)
				continue
			}
			if oldest == "" || exp.Before(oldestExp) {
				oldest, oldestExp = k, exp
			}
		}
		if len(s.byID) >= maxSessions {
			delete(s.byID, oldest)
		}
	}
	s.byID[s.digest(id)] = now.Add(sessionTTL)
	return id
}

// valid reports whether id names a live session.
func (s *sessions) valid(id string, now time.Time) bool {
	if id == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.digest(id)
	exp, ok := s.byID[k]
	if ok && !now.Before(exp) {
		delete(s.byID, k)
		return false
	}
	return ok
}

// end forgets a session.
func (s *sessions) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, s.digest(id))
}

// csrf returns the CSRF token of the forms of session id.
func (s *sessions) csrf(id string) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte("csrf\x00" + id))
	return hex.EncodeToString(mac.Sum(nil))
}

// csrfOK reports whether token is the CSRF token of session id, comparing in constant time.
func (s *sessions) csrfOK(id, token string) bool {
	return hmac.Equal([]byte(s.csrf(id)), []byte(token))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return b
}
