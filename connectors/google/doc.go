// Package google reads a Google Workspace directory (users, groups and their members) through
// the Admin SDK Directory API, for scimbridge to sync into IAM Identity Center.
//
// Authentication is either a service-account key with domain-wide delegation, or keyless
// through impersonated credentials (for workload identity federation, for example from AWS);
// both act as an admin user named by subject, with the narrowest read-only scopes.
// Every read is a paged list call (users 500 a page, groups and members 200 a page), spread
// over a bounded number of concurrent requests, each retried with backoff on Google's
// rate-limit answers, 429 and 5xx. A failed page fails the whole Read.
//
// Users become entries with ID = Google's immutable user id, Keys = the primary email and
// every alias (so members and managers named by email resolve), and attributes named after
// the API's fields: id, primaryEmail, aliases, nonEditableAliases, name.givenName,
// name.familyName, name.fullName, name.displayName, suspended, archived, isAdmin
// ("true"/"false"), orgUnitPath, customerId; every field of the list-valued fields
// (organizations, externalIds, relations, phones, addresses, emails, locations, languages) as
// "<list>.<field>", primary object first, plus "<list>.<type>" for a value by its type
// (phones.mobile, externalIds.organization, relations.manager); and
// "customSchemas.<Schema>.<field>" for the schemas named in custom_schemas. Groups: ID = the
// group id, Keys = email and aliases, attributes id, email, name, description, aliases,
// directMembersCount, and Members = references: user ids, ids of other selected groups (the
// mapping flattens them), the email of a member that is not a user read (external, or outside
// user_query: the mapping reports it as unresolved), and "customer:<id>" for a CUSTOMER
// member (reported likewise). Nested groups that are not selected are expanded in place.
//
// Change feed (connectors.FeedSource, Feed): the Directory API has no watch for groups, so
// group and membership changes come from the Admin SDK Reports API's admin audit log
// (activities.list, application "admin"): GROUP_SETTINGS events (CREATE_GROUP, DELETE_GROUP,
// CHANGE_GROUP_NAME, CHANGE_GROUP_EMAIL, ADD_GROUP_MEMBER, REMOVE_GROUP_MEMBER, ...) and
// USER_SETTINGS events (CREATE_USER, DELETE_USER, RENAME_USER, SUSPEND_USER, ...; password,
// 2-step verification and sign-in events are ignored), polled every feed.poll_interval (30s)
// from feed.overlap (10m) before the previous poll, since Google shows these events "near real
// time (a couple of minutes)" after they happen and some later; events already delivered are
// recognised by their id and not delivered again. The cursor holds the last poll's time and the
// ids seen within the overlap; one older than feed.retention (Google keeps admin events 6
// months), of another customer or domain, or unreadable, fails with
// connectors.ErrCursorExpired. Events name users and groups by email: each email is looked up
// once (users.get or groups.get, fields=id); a deleted one is named by the id the source
// learned for it from its reads. A change to a nested group outside the selection brings
// the selected groups that expand it. Users also come, at once, through Users.Watch push
// notifications: Verify hands each verified one to the watching feed. Opening the feed asks for
// one more scope, admin.reports.audit.readonly (FeedScopes), which the domain-wide delegation
// must grant; a source without a feed never asks for it. A quiet directory costs one request
// per poll.
//
// Targeted reads (connectors.TargetedReader, ReadEntries): users.get per user and, per group,
// groups.get and members.list (and those of the nested groups it expands), with the fields a
// full Read asks for; members are named as a full Read names them, from what the last full
// Read (or, after a restart, one fields-limited listing of ids) taught the source.
//
// An example source configuration:
//
//	google:
//	  subject: admin@example.com
//	  service_account_key_file: /run/secrets/google-key.json
//	  # or, keyless: impersonate_service_account: scimbridge@project.iam.gserviceaccount.com
//	  customer: my_customer
//	  user_query: "orgUnitPath='/Engineering'"
//	  group_query: "email:aws-*"
//	  custom_schemas: [Employment]
//	  suspended: disable        # or omit
//	  archived: omit            # or disable
//	  nested_groups: expand     # or derived (Google's includeDerivedMembership)
//	  concurrency: 4
//	  max_attempts: 5
//	  watch:
//	    address: https://scimbridge.example.com/webhooks/google
//	    events: [add, delete, update, undelete]
//	    ttl: 6h
//	    renew_before: 15m
//	  feed:
//	    poll_interval: 30s
//	    overlap: 10m
package google
