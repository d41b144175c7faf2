package client

import "testing"

// BenchmarkToTarget measures the SCIM reader's mapping of one user with most attributes set.
func BenchmarkToTarget(b *testing.B) {
	s := &scimUser{ID: "id", ExternalID: "e", UserName: "a@x.com", DisplayName: "A B", Title: "t", Locale: "fr",
		Name:         &scimName{GivenName: "A", FamilyName: "B"},
		Emails:       []scimMulti{{Value: "a@x.com", Type: "work", Primary: true}},
		PhoneNumbers: []scimMulti{{Value: "+1", Type: "work"}},
		Addresses:    []scimAddress{{Locality: "Paris", Country: "FR", Type: "work"}},
		Enterprise:   &scimEnterprise{Department: "Eng", Manager: &scimValue{Value: "m"}}}
	for b.Loop() {
		_ = s.toTarget()
	}
}
