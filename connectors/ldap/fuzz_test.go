package ldap_test

import (
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"

	"github.com/scimbridge/scimbridge/connectors/ldap"
)

// FuzzDecodeEntry feeds the raw decoder arbitrary bytes: it must return an error, never panic.
func FuzzDecodeEntry(f *testing.F) {
	attrs := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	a := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	a.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "cn", ""))
	vals := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "")
	vals.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "Zoë", ""))
	a.AppendChild(vals)
	attrs.AppendChild(a)
	dn := ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "cn=x,dc=y", "")
	good := append(dn.Bytes(), attrs.Bytes()...)
	e, err := ldap.DecodeEntry(good)
	if err != nil || e.DN != "cn=x,dc=y" || e.GetAttributeValue("cn") != "Zoë" {
		f.Fatalf("DecodeEntry(good) = %+v, %v", e, err)
	}
	f.Add(good)
	f.Add([]byte{0x04, 0x84, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x30, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ldap.DecodeEntry(b)
		_, _ = ldap.PagingCookie(b)
	})
}
