package file

import (
	"crypto/sha256"

	"github.com/scimbridge/scimbridge/connectors"
)

// Reading a file record by record (parseSplit) decodes each list item on its own. What an item
// gives depends only on its kind (user or group) and its bytes, once its line numbers are counted
// from the item's first line and its index in the list is left out; so the items of the last
// content read are kept, named by kind and bytes, and a new content decodes only the items that
// are not among them. The index and the lines are put back when an item is used (rebased), so an
// item that moved reports its new place.

// itemKey names an item by its kind and the SHA-256 of its bytes (as the content as a whole is
// named by its SHA-256), so that the cache holds no copy of the file.
type itemKey struct {
	group bool
	sum   [sha256.Size]byte
}

// itemCache holds what the items of one content gave, in the order of the file.
type itemCache []cachedItem

type cachedItem struct {
	key itemKey
	dec *decoded
}

// reuse is what one read record by record leaves for the next one: the items of its content,
// in order and by name, and, when no two of its records share an id, userName, email or group
// name, the index of those. Both indexes are updated in place by the next read, by what it
// changed.
type reuse struct {
	items itemCache
	byKey map[itemKey]*decoded
	uniq  *uniq
	// gen numbers the reads: a read stamps the items it uses with its own.
	gen uint64
}

// findWindow is how far from where the last item found was followed the next one is looked for,
// before it is looked up by name: an edit leaves the records around it in place.
const findWindow = 8

// find returns what the item named key gave in the last content, or nil; *at is where in the
// last content's items the item after the last one found is.
func (prev *reuse) find(key itemKey, at *int) *decoded {
	near := func(i int) bool {
		if i >= 0 && i < len(prev.items) && prev.items[i].key == key {
			*at = i + 1
			return true
		}
		return false
	}
	for d := range findWindow + 1 {
		if near(*at + d) {
			return prev.items[*at-1].dec
		}
	}
	for d := 1; d <= findWindow; d++ {
		if near(*at - d) {
			return prev.items[*at-1].dec
		}
	}
	return prev.byKey[key]
}

// decoded is what reading one list item alone gave, its lines counted from the item's first line
// (1). It is shared by every read that uses it; only gen changes after decode, under the lock of
// the cache holding it.
type decoded struct {
	kind  string
	entry connectors.Entry
	ok    bool // the record had no problem: it is returned, on line
	line  int
	// unique are the entry's values that must be unique (uniqueValues).
	unique [2]string
	gen    uint64
	// problems are the item's problems, in the order found; their Index is the item's index in
	// the read that decoded it, replaced by the index where it is used.
	problems []ParseError
	legacy   []legacyUse
}

// legacyUse is one older key spelling on a line.
type legacyUse struct {
	key  string
	line int
}

// decode reads one list item alone; ok is false when the item's text does not parse on its own
// (the file must then be read whole).
func decode(kind string, text []byte) (*decoded, bool) {
	n, ok := parsePiece(piece{text: text, line: 1})
	if !ok {
		return nil, false
	}
	sub := &parser{lines: map[string][]int{}}
	one := sub.user
	if kind == "group" {
		one = sub.group
	}
	var out []connectors.Entry
	sub.item(n, 0, kind, one, &out)
	dec := &decoded{kind: kind}
	if len(out) == 1 {
		dec.entry, dec.ok, dec.line = out[0], true, sub.lines[kind][0]
		dec.unique[0], dec.unique[1] = uniqueValues(kind, dec.entry)
	}
	for _, err := range sub.errs {
		dec.problems = append(dec.problems, *err.(*ParseError))
	}
	for _, pe := range sub.skipped {
		dec.problems = append(dec.problems, *pe)
	}
	if len(sub.legacy) > 0 {
		for _, k := range legacyKeys() {
			for _, l := range sub.legacy[k] {
				dec.legacy = append(dec.legacy, legacyUse{key: k, line: l})
			}
		}
	}
	return dec, true
}

// use adds what the item gave to p as if it had been read as the index-th item of kind's list,
// its first line on line first. The order of each of p's lists (errors, skipped records, each
// legacy key's lines) is the order of a read of the whole list, since an item adds only its own.
func (p *parser) use(dec *decoded, kind string, index, first int, out *[]connectors.Entry) {
	shift := first - 1
	for _, pe := range dec.problems {
		pe.Index = index // pe is a copy: the cached problem keeps its own
		if pe.Line > 0 {
			pe.Line += shift
		}
		p.report(&pe)
	}
	for _, u := range dec.legacy {
		p.deprecation(u.key, u.line+shift)
	}
	if dec.ok {
		*out = append(*out, dec.entry)
		p.lines[kind] = append(p.lines[kind], dec.line+shift)
	}
}

// splitRead is what parseSplit gives: what ParseWithWarnings returns, what the read leaves for the
// next one, and how many items it decoded rather than reused.
type splitRead struct {
	dir      *connectors.Directory
	warnings []string
	err      error
	next     *reuse
	decodes  int
	// checkedAll is set when every record was checked for values shared with another (else only
	// the records decoded were).
	checkedAll bool
}

// parseSplit reads a plainly laid out file one record at a time (see split); ok is false when the
// file must be read whole instead. prev (nil: nothing is kept) is what an earlier read left: the
// items whose text is unchanged are not decoded again, and when its records shared no unique
// value, only the records decoded are checked against the others (see uniq). prev is not usable
// after the call: the read's result holds what the next read uses.
func parseSplit(data []byte, prev *reuse) (r splitRead, ok bool) {
	sections, ok := split(data)
	if !ok || len(sections) == 0 {
		return splitRead{}, false
	}
	var (
		next      itemCache  // the items of this content
		at        int        // where in prev's items the item after the last one found is
		fresh     []*decoded // the items decoded, when prev is set
		freshKeys []itemKey  // and their names
		twice     bool       // an item's text is in the file twice
		gen       uint64
	)
	if prev != nil {
		prev.gen++ // so that the stamps of a read given up on are not this read's
		gen = prev.gen
		n := 0
		for _, s := range sections {
			n += len(s.items)
		}
		next = make(itemCache, 0, n)
		if prev.byKey == nil {
			prev.byKey = make(map[itemKey]*decoded, n)
		}
	}
	p := &parser{lines: map[string][]int{}}
	d := &connectors.Directory{Users: []connectors.Entry{}, Groups: []connectors.Entry{}}
	seen := map[string]bool{}
	for _, s := range sections {
		if seen[s.key] {
			p.add("", "", 0, s.line, "key %q appears twice", s.key)
			continue
		}
		seen[s.key] = true
		kind, out := "user", &d.Users
		switch s.key {
		case "users":
		case "groups":
			kind, out = "group", &d.Groups
		default:
			p.add("", "", 0, s.line, "unknown key %q (known: users, groups)", s.key)
			continue
		}
		*out = make([]connectors.Entry, 0, len(s.items))
		for i, pc := range s.items {
			var key itemKey
			var dec *decoded
			if prev != nil {
				key = itemKey{group: kind == "group", sum: sha256.Sum256(pc.text)}
				dec = prev.find(key, &at)
			}
			if dec == nil {
				var parsed bool
				if dec, parsed = decode(kind, pc.text); !parsed {
					return splitRead{}, false
				}
				r.decodes++
				if prev != nil {
					fresh, freshKeys = append(fresh, dec), append(freshKeys, key)
				}
			}
			if prev != nil {
				twice = twice || dec.gen == gen
				dec.gen = gen
				next = append(next, cachedItem{key: key, dec: dec})
			}
			p.use(dec, kind, i, pc.line, out)
		}
	}
	if prev != nil {
		// The items the last content had and this one has not are forgotten; the new ones are
		// named. (An item in the last content twice, decoded twice, may be left unnamed: it is
		// then decoded again should it move far.)
		for _, it := range prev.items {
			if it.dec.gen != gen && prev.byKey[it.key] == it.dec {
				delete(prev.byKey, it.key)
			}
		}
		for i, dec := range fresh {
			prev.byKey[freshKeys[i]] = dec
		}
	}
	if prev != nil && prev.uniq != nil && !twice {
		// The index holds the values of the last content's records: take out those of the records
		// this one no longer has, and add those of the records it decoded. When none of those
		// collides, no two records of this content share a value.
		u := prev.uniq
		prev.uniq = nil
		for _, it := range prev.items {
			if it.dec.gen != gen && it.dec.ok {
				u.remove(it.dec)
			}
		}
		for _, dec := range fresh {
			if dec.ok && !u.add(dec) {
				u = nil
				break
			}
		}
		p.unique = u
	}
	r.checkedAll = p.unique == nil
	r.dir, r.err = p.finish(d)
	r.warnings = p.warnings()
	if prev != nil {
		r.next = &reuse{items: next, byKey: prev.byKey, uniq: p.unique, gen: gen}
	}
	return r, true
}
