package ldap

import "github.com/scimbridge/scimbridge/connectors"

// SetAfterPage installs a hook that runs after each page of each search of a server source.
func SetAfterPage(src connectors.Source, f func(what string, page int)) {
	src.(*source).afterPage = f
}

// ParseRange exposes parseRange to the tests.
var ParseRange = parseRange

// CleanLDIF exposes cleanLDIF to the tests.
var CleanLDIF = cleanLDIF

// UseGoLDAPOnly makes a server source page with go-ldap instead of the raw decoder.
func UseGoLDAPOnly(src connectors.Source) { src.(*source).goLDAPOnly = true }

// DecodeEntry and PagingCookie expose the raw decoder to the fuzz test.
var (
	DecodeEntry  = decodeEntry
	PagingCookie = pagingCookie
)

// SetInChainConcurrency sets how many in-chain searches a server source runs at once.
func SetInChainConcurrency(src connectors.Source, n int) { src.(*source).inChain = n }

// ErrMalformed exposes errRaw, the error every decoder failure wraps, to the fuzz test.
var ErrMalformed = errRaw

// FeedPolls returns how many polls (or syncrepl searches) a feed has started.
func FeedPolls(f connectors.Feed) int64 { return f.(*feed).polls.Load() }

// SetFeedPollHook runs hook at the start of each poll of a feed (before its first request).
func SetFeedPollHook(f connectors.Feed, hook func(n int64)) { f.(*feed).pollHook = hook }

// FeedMode returns the mode a feed runs in (auto resolved).
func FeedMode(f connectors.Feed) string { return f.(*feed).mode }
