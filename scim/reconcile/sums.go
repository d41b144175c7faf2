package reconcile

import (
	"hash/maphash"

	"github.com/scimbridge/scimbridge/scim"
)

// sums fingerprints a mapped snapshot: a 64-bit hash of each user's and group's record and the
// set of records left out. It is what DirectorySource keeps of a mapped read to tell which
// records moved since the last applied run, at a few dozen bytes a record instead of the records
// themselves. Two different records hash alike with odds of 2^-64; such a miss would wait for the
// next full run, which plans from the records themselves.
type sums struct {
	users, groups map[string]uint64
	dropped       map[string]string // kind/id -> kind
}

var sumSeed = maphash.MakeSeed()

// userRecord is a User with its address held by value, so that maphash.Comparable hashes the
// address's content rather than its pointer.
type userRecord struct {
	u          scim.User
	address    scim.Address
	hasAddress bool
}

func sumsOf(s scim.Snapshot) *sums {
	out := &sums{
		users:   make(map[string]uint64, len(s.Users)),
		groups:  make(map[string]uint64, len(s.Groups)),
		dropped: map[string]string{},
	}
	for _, u := range s.Users {
		r := userRecord{u: u}
		if u.Address != nil {
			r.address, r.hasAddress, r.u.Address = *u.Address, true, nil
		}
		out.users[u.ExternalID] = maphash.Comparable(sumSeed, r)
	}
	var h maphash.Hash
	h.SetSeed(sumSeed)
	for _, g := range s.Groups {
		h.Reset()
		h.WriteString(g.DisplayName)
		for _, m := range g.Members {
			h.WriteByte(0)
			h.WriteString(m)
		}
		out.groups[g.ExternalID] = h.Sum64()
	}
	for _, p := range s.Skipped {
		if p.Dropped {
			out.dropped[p.Kind+"/"+p.ID] = p.Kind
		}
	}
	return out
}

// moved names the users and groups whose mapped record differs between old (nil for none) and
// cur: created, removed, changed, or moved in or out of the records left out.
func (old *sums) moved(cur *sums) Selection {
	if old == nil {
		old = &sums{}
	}
	var sel Selection
	diff := func(o, c map[string]uint64, add func(string)) {
		for id, sum := range c {
			if was, ok := o[id]; !ok || was != sum {
				add(id)
			}
		}
		for id := range o {
			if _, ok := c[id]; !ok {
				add(id)
			}
		}
	}
	diff(old.users, cur.users, func(id string) { sel.Users = append(sel.Users, id) })
	diff(old.groups, cur.groups, func(id string) { sel.Groups = append(sel.Groups, id) })
	for k, kind := range cur.dropped {
		if _, ok := old.dropped[k]; !ok {
			sel = sel.add(kind, k[len(kind)+1:])
		}
	}
	for k, kind := range old.dropped {
		if _, ok := cur.dropped[k]; !ok {
			sel = sel.add(kind, k[len(kind)+1:])
		}
	}
	return sel.Merge(Selection{})
}
