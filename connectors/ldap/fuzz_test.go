package ldap_test

import (
	"errors"
	"slices"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"

	"github.com/scimbridge/scimbridge/connectors/ldap"
)

// encodeEntry encodes a SearchResultEntry's body (objectName, attributes) as a server sends it.
func encodeEntry(e *goldap.Entry) []byte {
	attrs := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	for _, at := range e.Attributes {
		a := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
		a.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, at.Name, ""))
		vals := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "")
		for _, v := range at.ByteValues {
			vals.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, string(v), ""))
		}
		a.AppendChild(vals)
		attrs.AppendChild(a)
	}
	dn := ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, e.DN, "")
	return append(dn.Bytes(), attrs.Bytes()...)
}

// flat renders an entry for comparison: its DN, then each attribute's name and values.
func flat(e *goldap.Entry) []string {
	out := []string{e.DN}
	for _, a := range e.Attributes {
		out = append(out, "attr:"+a.Name)
		for i, v := range a.ByteValues {
			if a.Values[i] != string(v) {
				out = append(out, "MISMATCH")
			}
			out = append(out, "val:"+string(v))
		}
	}
	return out
}

// FuzzDecodeEntry feeds the raw decoder arbitrary bytes. It must never panic; every failure is
// the error its comment promises (errRaw, "malformed LDAP message"), for the entry decoder and the
// paging-control decoder alike; and an entry it accepts encodes back to bytes it decodes to the
// same entry.
func FuzzDecodeEntry(f *testing.F) {
	good := encodeEntry(&goldap.Entry{DN: "cn=x,dc=y", Attributes: []*goldap.EntryAttribute{
		{Name: "cn", ByteValues: [][]byte{[]byte("Zoë")}},
		{Name: "objectGUID", ByteValues: [][]byte{{0, 1, 0xff, 0x80}}},
		{Name: "member", ByteValues: [][]byte{[]byte("cn=a"), []byte("cn=b"), {}}},
		{Name: "empty"},
	}})
	e, err := ldap.DecodeEntry(good)
	if err != nil || e.DN != "cn=x,dc=y" || e.GetAttributeValue("cn") != "Zoë" || len(e.GetAttributeValues("member")) != 3 {
		f.Fatalf("DecodeEntry(good) = %+v, %v", e, err)
	}
	// Every strict prefix of a good entry is malformed, with the promised error.
	for n := range len(good) {
		if _, err := ldap.DecodeEntry(good[:n]); !errors.Is(err, ldap.ErrMalformed) {
			f.Fatalf("DecodeEntry(good[:%d]) error %v, want ErrMalformed", n, err)
		}
	}
	// One malformed part at each depth, inside an otherwise well-formed entry: each must fail with
	// the promised error (and seeds the fuzzer past the outer checks).
	tl := func(tag byte, parts ...[]byte) []byte {
		c := slices.Concat(parts...)
		return append([]byte{tag, byte(len(c))}, c...)
	}
	entry := func(attrs ...[]byte) []byte { return slices.Concat(tl(0x04, []byte("cn=x")), tl(0x30, attrs...)) }
	name, val := tl(0x04, []byte("cn")), tl(0x04, []byte("v"))
	for what, b := range map[string][]byte{
		"name not an octet string":   slices.Concat(tl(0x02, []byte("cn=x")), tl(0x30)),
		"attributes not a sequence":  slices.Concat(tl(0x04, []byte("cn=x")), tl(0x31)),
		"attribute not a sequence":   entry(tl(0x31, name, tl(0x31, val))),
		"attribute name wrong tag":   entry(tl(0x30, tl(0x02, []byte("cn")), tl(0x31, val))),
		"values not a set":           entry(tl(0x30, name, tl(0x30, val))),
		"value not an octet string":  entry(tl(0x30, name, tl(0x31, val, tl(0x02, []byte{1})))),
		"value length past its set":  entry(tl(0x30, name, tl(0x31, []byte{0x04, 0x05, 'v'}))),
		"attribute without its set":  entry(tl(0x30, name)),
		"long length of 5 octets":    entry(tl(0x30, name, tl(0x31, []byte{0x04, 0x85, 0, 0, 0, 0, 1}))),
		"long length with no octets": entry(tl(0x30, name, tl(0x31, []byte{0x04, 0x80}))),
	} {
		if _, err := ldap.DecodeEntry(b); !errors.Is(err, ldap.ErrMalformed) {
			f.Fatalf("DecodeEntry(%s) error %v, want ErrMalformed", what, err)
		}
		f.Add(b)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{0x04, 0x84, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x04, 0x00, 0x30, 0x80})
	f.Add([]byte{0x30, 0x80})
	// A paging control: SEQUENCE { OID, criticality, OCTET STRING { SEQUENCE { size, cookie } } }.
	paging := goldap.NewControlPaging(100)
	paging.SetCookie([]byte("next"))
	ctl := paging.Encode().Bytes()
	if cookie, err := ldap.PagingCookie(ctl); err != nil || string(cookie) != "next" {
		f.Fatalf("PagingCookie(control) = %q, %v", cookie, err)
	}
	f.Add(ctl)
	f.Add(ctl[:len(ctl)-3])
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ldap.DecodeEntry(b)
		switch {
		case err != nil && !errors.Is(err, ldap.ErrMalformed):
			t.Errorf("DecodeEntry error %v (%T), want one wrapping ErrMalformed", err, err)
		case err == nil:
			again, err := ldap.DecodeEntry(encodeEntry(e))
			if err != nil {
				t.Fatalf("an accepted entry does not decode again once encoded: %v", err)
			}
			if got, want := flat(again), flat(e); !slices.Equal(got, want) {
				t.Errorf("round trip: got %q, want %q", got, want)
			}
		}
		if _, err := ldap.PagingCookie(b); err != nil && !errors.Is(err, ldap.ErrMalformed) {
			t.Errorf("PagingCookie error %v (%T), want one wrapping ErrMalformed", err, err)
		}
	})
}
