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
//	    address: https://scimbridge.example.com/v1/webhooks/google   # scimbridge serve's endpoint
//	    events: [add, delete, update, undelete]
//	    ttl: 6h
//	    renew_before: 15m
package google
