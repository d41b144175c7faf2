// Package ldap reads users and groups from an LDAP directory, Active Directory, or an LDIF export
// of either, and hands them to the shared mapping as connectors.Entry values.
//
// One entry conversion serves all three: the stable id is the flavour's id attribute (AD
// objectGUID in canonical form, OpenLDAP entryUUID), the keys are the normalised DN plus the
// flavour's key attributes (sAMAccountName, userPrincipalName, uid, mail), and a group's Members
// are its raw references: normalised member DNs and memberUid values. The shared mapping
// resolves them through the keys and flattens nested groups. With `nested: server` (Active
// Directory only) the server resolves the nesting, wherever in the domain the nested groups are:
// for each group the scope may keep (the mapping's GroupMayBeInScope, passed through
// connectors.GroupScoped; a group out of scope comes back without members) one search with the
// in-chain matching rule lists the groups nested in it, up to four such searches at once; a
// user read (with its memberOf) is a member when one of its direct groups is the group or one of
// those. A search of the users per group with the in-chain rule would make the DC evaluate the
// rule over every user for every group: on a Samba DC with 1,606 users, 40 groups took 100 s
// that way and now take under a second.
//
// TLS is verified by default (tls.ca_file, tls.server_name). A Samba AD DC left with the
// certificate it generates for itself cannot be used from Go: its serial number is often
// negative (Go refuses it unless GODEBUG=x509negativeserial=1) and it has no subject alternative
// names (refused, with no setting to undo it). Every such refusal is reported with Go's reason and
// what to do: give the DC a proper certificate (smb.conf: tls keyfile, tls certfile, tls cafile).
//
// Reads are all or nothing: searches are paged (at most 1,000 a page) and streamed, AD member
// ranges are always requested explicitly (member;range=0-1499, then onwards), and any failure part
// way (dropped connection, size limit exceeded, time limit, referral result, cancelled context)
// fails the whole Read, so that nothing is deleted because of a partial read. The next Read dials
// and binds again.
//
// Users and groups are read at the same time over two connections of their own. With a simple
// or anonymous bind, those paged searches are decoded by a small in-place BER decoder (raw.go)
// rather than go-ldap, which costs three goroutine hand-offs and a packet tree per entry; go-ldap
// still does everything else (Kerberos binds and their searches, range retrieval, Check). Reading 20,000 users and 2,000 groups from a local slapd takes about as long
// as `ldapsearch -E pr=1000/noprompt` fetching the same (BenchmarkRead20k).
//
// # Change feeds and targeted reads
//
// A server source is a connectors.FeedSource and a connectors.TargetedReader. Its feed
// (feed.mode, default auto) reports the ids of users and groups that changed, with a cursor
// that resumes after a restart:
//
//   - dirsync (Active Directory): the DirSync control every feed.poll_interval (default 15s), on
//     the domain's root, with the object-security flag (a plain account sees what it may read)
//     and incremental member values. It asks for every attribute a read takes, the member
//     attributes, name and parentGUID: DirSync returns an object only when a listed attribute
//     changed. The cursor is the DirSync cookie.
//   - usn (Active Directory): users, groups and tombstones (show-deleted control) whose
//     uSNChanged lies between the last and the current highestCommittedUSN of the DC's root DSE:
//     one request a poll while the DC's USN stands still, two once anything in the domain was
//     written. auto picks it when the DC refuses DirSync.
//   - syncrepl (OpenLDAP with the syncprov overlay): an RFC 4533 refreshAndPersist search held
//     open under the nearest entry above both base DNs; changes are pushed, and a quiet hour
//     costs no request. Give syncprov a session log (syncprov-sessionlog): resuming from a cookie
//     older than it makes slapd answer with a present phase.
//   - timestamp (any LDAP server): modifyTimestamp at or after the last one seen, every poll.
//     It cannot see deletions: they reach the target with the periodic full read. auto picks it
//     when the server refuses a sync request.
//
// A changed entry is asked of the server against the configured scope (one search for the
// users among the changed ids, one for the groups): one in scope is a user or group change, one
// out of scope (moved out, no longer matching, or never in) is reported deleted, and so is a
// tombstone or a syncrepl deletion (Kind "" unless its DN lies in one scope's base only); the
// engine ignores deletions of ids it does not hold. DirSync says which attributes changed: an
// out-of-scope object whose name, parent and filter attributes did not change was out of scope
// before too, and is passed over (the domain's other users and computers make no noise); the
// other feeds cannot tell, and report it deleted. A group's member change, a nested group's
// included, makes that group changed; the engine recomputes the groups that contain it.
//
// Cursors name the mode, a fingerprint of the scope (base DNs, scopes, filters, id attribute)
// and, on AD, the DC (dnsHostName). A cursor from another mode, scope or DC, a damaged one, a
// DirSync cookie the DC refuses, a USN that went back, a syncrepl present phase or
// e-syncRefreshRequired: the feed hands over a Full batch saying why, with a cursor for the
// server's position now, and goes on. A dropped connection is dialled again (up to 5 failures in
// a row, 1s doubling) from the last cursor delivered.
//
// On AD, only a bind with the Replicating Directory Changes right is reliably shown tombstones
// (Samba shows a plain account none, through DirSync or show-deleted): without it the feed
// warns that deletions may wait for the next full read (a leaver disabled first is seen at
// once).
//
// ReadEntries reads the given ids with the full read's attributes over the source's one
// connection: the configured base, scope and filter and'ed with the ids (objectGUID as its
// escaped bytes, entryUUID as text), 200 ids a search, then a large AD group's further member
// ranges, or with nested server the groups in the chain and the users in them (two searches a
// group). One changed user costs 2 requests pushed by syncrepl (the scope check and the read),
// 3 with DirSync (the poll, the check, the read), 4 with usn (measured by TestSyncreplFeed and
// TestADFeeds through a counting proxy).
//
// An example configuration (the lead's loader decodes it strictly):
//
//	flavour: active_directory          # active_directory | openldap | generic
//	url: ldap://dc1.example.com:389    # or ldaps://...:636
//	start_tls: true
//	tls:
//	  ca_file: /etc/scimbridge/ad-ca.pem
//	  server_name: dc1.example.com
//	dial_timeout: 10s
//	request_timeout: 2m
//	bind_dn: CN=scimbridge,OU=Service,DC=example,DC=com
//	bind_password_file: /run/secrets/ldap
//	users:
//	  base_dn: OU=Staff,DC=example,DC=com
//	  filter: (&(objectCategory=person)(objectClass=user))
//	groups:
//	  base_dn: OU=Groups,DC=example,DC=com
//	  nested: server                   # client (default) | server
//	feed:
//	  mode: auto                       # auto | dirsync | usn | syncrepl | timestamp | off
//	  poll_interval: 15s
//
// For an offline export, set `ldif_file: /path/export.ldif` instead of url and the bind settings;
// base DNs, scopes and filters are then applied to the file's entries in the client.
package ldap
