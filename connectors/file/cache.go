package file

import (
	"crypto/sha256"
	"slices"
	"sync"

	"github.com/scimbridge/scimbridge/connectors"
)

// parseCache is a source's last parse: the SHA-256 of the content and what ParseWithWarnings gave
// for it, so that the change feed's read and the run's read of the same bytes parse them once;
// and the items of the last content read record by record (see itemCache), so that a new content
// decodes only the records that changed. It is safe for concurrent use: the feed and a run read
// at the same time.
type parseCache struct {
	mu       sync.Mutex
	have     bool
	sum      [sha256.Size]byte
	dir      *connectors.Directory
	warnings []string
	err      error
	last     *reuse // what the last read record by record left

	// parses, decodes and checksAll count the contents parsed, the items decoded and the reads
	// that checked every record for a value shared with another (for the tests).
	parses, decodes, checksAll int
}

// parse returns data's SHA-256 and what ParseWithWarnings(data) returns. The Directory is the
// cached one, shared with every other caller of parse: nobody may modify it (Read hands out
// copies).
func (c *parseCache) parse(data []byte) (sum [sha256.Size]byte, d *connectors.Directory, warnings []string, err error) {
	sum = sha256.Sum256(data)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.have && c.sum == sum {
		return sum, c.dir, c.warnings, c.err
	}
	if c.last == nil {
		c.last = &reuse{}
	}
	c.parses++
	r, ok := parseSplit(data, c.last)
	d, warnings, err = r.dir, r.warnings, r.err
	if ok {
		c.decodes += r.decodes
		if r.checkedAll {
			c.checksAll++
		}
		c.last = r.next
	} else {
		// A file that must be read whole (a half-saved edit that does not parse, say) has no
		// items: the last ones are kept for the next content that splits.
		d, warnings, err = parseWhole(data)
	}
	c.have, c.sum, c.dir, c.warnings, c.err = true, sum, d, warnings, err
	return sum, d, warnings, err
}

// stats returns how many contents were parsed, items decoded, and reads checked every record
// for a shared value so far.
func (c *parseCache) stats() (parses, decodes, checksAll int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.parses, c.decodes, c.checksAll
}

// clone returns a Directory of its own lists holding d's entries. The entries' attribute maps and
// value lists are still shared with the cache: nothing downstream writes to an entry (Mapping.Apply
// documents that it does not modify the directory; the reconciler patches copies of the lists), and
// TestReadersDoNotModifyTheCachedRead checks it for the mapping, the report, explain and the
// reconciler's targeted runs.
func clone(d *connectors.Directory) *connectors.Directory {
	return &connectors.Directory{Users: slices.Clone(d.Users), Groups: slices.Clone(d.Groups), Skipped: slices.Clone(d.Skipped)}
}
