/* The Key Vault REST client: list the objects of a collection and the
 * versions of one (every page, nextLink followed only within the vault's
 * origin, a page cap, loop detection; the items of every collection read by
 * one parser, from a table of what each collection's items carry), get a
 * certificate bundle and the secret behind it, a secret by name, a key's
 * JWK.  Each request carries a token
 * from auth; the first one goes without when auth does not know the tenant
 * yet, and its 401 challenge tells it; a 401 to a token drops that token and
 * retries once.  JSON is read with jansson field by field: strict about the
 * types of the fields kvfs uses, silent about fields it does not know.  A
 * page or bundle that does not parse completely is an error, never a partial
 * result.  Parsers log at debug at most.  Thread-safe: no state of its own
 * beyond what auth and http lock. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <malloc.h>

#include <jansson.h>

#include "defaults.h"
#include "gate.h"
#include "jwk.h"
#include "log.h"
#include "metrics.h"
#include "pki.h"
#include "url.h"
#include "util.h"
#include "vault.h"

#define PAGE_SIZE 25
/* A list page is never on a file operation's path (start-up, and later
 * background revalidation): it may wait longer than deadline=. */
#define LIST_BUDGET_MIN_S 30

struct kvfs_vault {
	struct kvfs_http *http;
	struct kvfs_auth *auth;
	char *url;		/* "https://host[:port]" */
	char *api_version;	/* "7.4" */
	struct kvfs_gate *gate; /* retries and backoff for this vault */
	unsigned deadline_s;	/* budget of one GET, retries included */
};

/* A secret's body goes through jansson, which copies its strings: every
 * buffer jansson frees is wiped first. */
static void json_wipe_free(void *p)
{
	if (!p)
		return;
	OPENSSL_cleanse(p, malloc_usable_size(p));
	free(p);
}

int kvfs_vault_new(const struct kvfs_config *c, struct kvfs_http *h,
		   struct kvfs_auth *a, struct kvfs_vault **ret)
{
	struct kvfs_vault *v;
	size_t n;

	/* Before any thread: the allocator is process-wide. */
	json_set_alloc_funcs(malloc, json_wipe_free);

	if (!c->vault_url || !h || !a)
		return -EINVAL;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->http = h;
	v->auth = a;
	v->url = strdup(c->vault_url);
	v->api_version = strdup(c->api_version ? c->api_version
					       : KVFS_DEFAULT_API_VERSION);
	if (!v->url || !v->api_version) {
		kvfs_vault_free(v);
		return -ENOMEM;
	}
	n = strlen(v->url);
	while (n > 0 && v->url[n - 1] == '/')
		v->url[--n] = '\0';
	v->deadline_s = c->deadline ? c->deadline : KVFS_DEFAULT_DEADLINE;
	if (kvfs_gate_new(v->url, &KVFS_BACKOFF_VAULT, &v->gate) < 0) {
		kvfs_vault_free(v);
		return -ENOMEM;
	}
	*ret = v;
	return 0;
}

int64_t kvfs_vault_next_attempt_ms(struct kvfs_vault *v)
{
	return v ? kvfs_gate_next_attempt_ms(v->gate) : 0;
}

void kvfs_vault_free(struct kvfs_vault *v)
{
	if (!v)
		return;
	kvfs_gate_free(v->gate);
	free(v->url);
	free(v->api_version);
	free(v);
}

/* ---- names and origins ---- */

bool kvfs_vault_object_name_valid(const char *name)
{
	size_t n = 0;

	if (!name)
		return false;
	for (const char *p = name; *p; p++, n++) {
		if (n >= 127)
			return false;
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z') || *p == '-'))
			return false;
	}
	return n > 0;
}

/* "https://v.vault.azure.net/SEG/NAME[/VERSION]" -> NAME, VERSION, SEG
 * being a collection's REST path segment ("certificates", "secrets").
 * want_version: 1 required, 0 forbidden (then NAME is all that follows the
 * segment, slashes included).  Returns 1 when the id is well formed but
 * NAME or VERSION cannot be a path ("..", "a%2Fb", "a/b", too long): they
 * are handed back all the same, for the caller to skip and say so. */
static int parse_object_id(const char *id, const char *seg, bool want_version,
			   char **ret_name, char **ret_version)
{
	_cleanup_free_ char *name = NULL, *version = NULL;
	const char *path, *slash;
	size_t seglen = strlen(seg);
	int r;

	/* An id's origin names no one to send anything to (a sid is
	 * checked with kvfs_url_same_origin() before it is followed):
	 * only its path is read. */
	path = kvfs_url_path(id);
	if (!path || strncmp(path + 1, seg, seglen) != 0 ||
	    path[1 + seglen] != '/')
		return -EBADMSG;
	path += seglen + 2;
	if (strpbrk(path, "?#"))
		return -EBADMSG;

	slash = want_version ? strchr(path, '/') : NULL;
	name = slash ? strndup(path, (size_t)(slash - path)) : strdup(path);
	if (!name)
		return -ENOMEM;
	if (slash) {
		if (strchr(slash + 1, '/'))
			return -EBADMSG;
		version = strdup(slash + 1);
		if (!version)
			return -ENOMEM;
	} else if (want_version) {
		return -EBADMSG;
	}

	/* Names that cannot be paths are reported as such, apart from
	 * malformed ids. */
	r = !kvfs_vault_object_name_valid(name) ||
	    (version && (!kvfs_vault_object_name_valid(version) ||
			 strcasecmp(version, "pending") == 0));

	*ret_name = TAKE_PTR(name);
	if (ret_version)
		*ret_version = TAKE_PTR(version);
	return r;
}

/* ---- JSON field readers: absent or null is "not there"; a present
 * field of the wrong type is an error. ---- */

static json_t *field(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return v && !json_is_null(v) ? v : NULL;
}

static int get_string(json_t *obj, const char *key, bool required, char **ret)
{
	json_t *v = field(obj, key);
	char *s;

	if (!v)
		return required ? -EBADMSG : 0;
	if (!json_is_string(v))
		return -EBADMSG;
	/* An embedded NUL would make the C string lie about its length. */
	if (strlen(json_string_value(v)) != json_string_length(v))
		return -EBADMSG;
	s = strdup(json_string_value(v));
	if (!s)
		return -ENOMEM;
	*ret = s;
	return 0;
}

static int get_int(json_t *obj, const char *key, int64_t *ret)
{
	json_t *v = field(obj, key);

	if (!v)
		return 0;
	if (!json_is_integer(v))
		return -EBADMSG;
	*ret = (int64_t)json_integer_value(v);
	return 0;
}

static int get_bool(json_t *obj, const char *key, bool *ret)
{
	json_t *v = field(obj, key);

	if (!v)
		return 0;
	if (!json_is_boolean(v))
		return -EBADMSG;
	*ret = json_is_true(v);
	return 0;
}

static int parse_attrs(json_t *obj, struct kvfs_object_attrs *ret)
{
	struct kvfs_object_attrs a = {.enabled = true};
	json_t *attrs = field(obj, "attributes");
	int r;

	if (!attrs) {
		*ret = a;
		return 0;
	}
	if (!json_is_object(attrs))
		return -EBADMSG;
	if ((r = get_bool(attrs, "enabled", &a.enabled)) < 0 ||
	    (r = get_int(attrs, "nbf", &a.nbf)) < 0 ||
	    (r = get_int(attrs, "exp", &a.exp)) < 0 ||
	    (r = get_int(attrs, "created", &a.created)) < 0 ||
	    (r = get_int(attrs, "updated", &a.updated)) < 0)
		return r;
	*ret = a;
	return 0;
}

/* What a listing keeps of tags (vault.h): Key Vault allows 15 tags of
 * 256 characters; these caps leave room and bound what is kept. */
#define TAGS_MAX 64
#define TAG_BYTES_MAX 1024

/* tags, when present: a map of strings without a NUL.  Returns their
 * number. */
static int check_tags(json_t *obj)
{
	json_t *tags = field(obj, "tags");
	const char *key;
	json_t *val;

	if (!tags)
		return 0;
	if (!json_is_object(tags))
		return -EBADMSG;
	json_object_foreach (tags, key, val) {
		if (!json_is_string(val) ||
		    strlen(json_string_value(val)) != json_string_length(val))
			return -EBADMSG;
	}
	return (int)json_object_size(tags);
}

static void tags_free(struct kvfs_tag *tags, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(tags[i].key);
		free(tags[i].value);
	}
	free(tags);
}

/* tags -> an array in the vault's order, of at most TAGS_MAX tags whose
 * names and values are at most TAG_BYTES_MAX bytes: the others are read
 * but not kept.  NULL and 0 when none is kept. */
static int parse_tag_list(json_t *obj, struct kvfs_tag **ret, size_t *ret_n)
{
	struct kvfs_tag *tags;
	const char *key;
	json_t *val;
	size_t n = 0;
	int r;

	r = check_tags(obj);
	if (r <= 0)
		return r;
	tags = calloc(r < TAGS_MAX ? (size_t)r : TAGS_MAX, sizeof(*tags));
	if (!tags)
		return -ENOMEM;
	json_object_foreach (field(obj, "tags"), key, val) {
		if (n == TAGS_MAX || strlen(key) > TAG_BYTES_MAX ||
		    json_string_length(val) > TAG_BYTES_MAX) {
			log_debug("not keeping tag '%.64s': past the caps",
				  key);
			continue;
		}
		tags[n].key = strdup(key);
		tags[n].value = strdup(json_string_value(val));
		n++;
		if (!tags[n - 1].key || !tags[n - 1].value) {
			tags_free(tags, n);
			return -ENOMEM;
		}
	}
	if (n == 0) {
		free(tags);
		tags = NULL;
	}
	*ret = tags;
	*ret_n = n;
	return 0;
}

/* The n tags as parse_tags() writes them; NULL when n is 0. */
static int tag_list_json(const struct kvfs_tag *tags, size_t n, char **ret)
{
	_cleanup_(json_decrefp) json_t *o = NULL;

	*ret = NULL;
	if (n == 0)
		return 0;
	o = json_object();
	if (!o)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (json_object_set_new(o, tags[i].key,
					json_string(tags[i].value)) < 0)
			return -ENOMEM;
	*ret = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	return *ret ? 0 : -ENOMEM;
}

/* tags: a map of strings -> compact JSON with sorted keys, "{}" when
 * absent, so that equal tags give equal strings. */
static int parse_tags(json_t *obj, char **ret)
{
	json_t *tags = field(obj, "tags");
	char *s;
	int r;

	r = check_tags(obj);
	if (r < 0)
		return r;
	if (!tags)
		s = strdup("{}");
	else
		s = json_dumps(tags, JSON_COMPACT | JSON_SORT_KEYS);
	if (!s)
		return -ENOMEM;
	*ret = s;
	return 0;
}

/* Whether a body jansson refused for a key given twice is otherwise
 * whole JSON.  The refusal stops the reading where it stands, so only a
 * second reading tells; the path of a broken server, never of a
 * well-formed body. */
static bool whole_but_duplicate(const char *json, size_t len,
				const json_error_t *jerr)
{
	json_t *root;
	bool whole;

	if (json_error_code(jerr) != json_error_duplicate_key)
		return false;
	root = json_loadb(json, len, JSON_ALLOW_NUL, NULL);
	whole = root != NULL;
	json_decref(root);
	return whole;
}

/* The JSON object in json.  ret_garbled: non-NULL for a response body,
 * set true when the body is not whole JSON (cut short or garbled on the
 * way: worth another attempt) rather than JSON that makes no sense. */
static json_t *load(const char *json, size_t len, bool *ret_garbled,
		    struct kvfs_error *err)
{
	json_error_t jerr;
	json_t *root;

	if (ret_garbled)
		*ret_garbled = false;
	/* "\u0000" is read: a secret's value may hold it.  Every other
	 * string is taken by get_string(), which refuses it. */
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL,
			  &jerr);
	if (!root && ret_garbled && !whole_but_duplicate(json, len, &jerr)) {
		*ret_garbled = true;
		kvfs_error_set_message(err, "incomplete or malformed JSON "
					    "body");
		return NULL;
	}
	if (!root) {
		kvfs_error_set_message(err, "malformed JSON: %s (line %d)",
				       jerr.text, jerr.line);
		return NULL;
	}
	if (!json_is_object(root)) {
		kvfs_error_set_message(err, "malformed JSON: not an object");
		json_decref(root);
		return NULL;
	}
	return root;
}

/* ---- list ---- */

void kvfs_object_item_clear(struct kvfs_object_item *it)
{
	free(it->name);
	free(it->version);
	free(it->x5t);
	tags_free(it->tags, it->ntags);
	free(it->tags_json);
	memset(it, 0, sizeof(*it));
}

void kvfs_object_list_clear(struct kvfs_object_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		kvfs_object_item_clear(&l->items[i]);
	free(l->items);
	memset(l, 0, sizeof(*l));
}

/* What an item of a listing keeps: the tree needs its name, version,
 * attributes, one string of its collection's (a certificate's x5t, a
 * secret's contentType), whether it backs a certificate and its tags (the
 * filters match them before anything is fetched), and nothing else.  Key
 * Vault's ids are under 300 bytes
 * (a 24-character vault, a 127-character name, a 32-character version) and
 * its x5t 27; longer ones are refused rather than kept, and so is a
 * contentType longer than a MIME type's 255. */
#define ITEM_ID_MAX 1024
#define ITEM_X5T_MAX 64
#define ITEM_CONTENT_TYPE_MAX 255

/* How the items of a collection's listings read, by its REST path segment
 * (struct kvfs_collection_info's name): the field that holds an item's id
 * URL (a key's is "kid"), the one optional string an item keeps, and
 * whether items tell a secret or key that backs a certificate
 * ("managed").  A collection of the table is listed once it has a row
 * here. */
struct item_rules {
	const char *segment;
	const char *id;
	const char *string; /* kept in x5t / content_type; NULL: none */
	size_t string_max;
	bool managed;
};

static const struct item_rules item_rules[] = {
	{.segment = "certificates",
	 .id = "id",
	 .string = "x5t",
	 .string_max = ITEM_X5T_MAX},
	{.segment = "secrets",
	 .id = "id",
	 .string = "contentType",
	 .string_max = ITEM_CONTENT_TYPE_MAX,
	 .managed = true},
	{.segment = "keys", .id = "kid", .managed = true},
};

static const struct item_rules *
item_rules_of(const struct kvfs_collection_info *coll)
{
	for (size_t i = 0; coll && i < ELEMENTSOF(item_rules); i++)
		if (strcmp(coll->name, item_rules[i].segment) == 0)
			return &item_rules[i];
	return NULL;
}

static size_t item_bytes(const struct kvfs_object_item *it)
{
	size_t n = sizeof(*it) + (it->name ? strlen(it->name) + 1 : 0) +
		   (it->version ? strlen(it->version) + 1 : 0) +
		   (it->x5t ? strlen(it->x5t) + 1 : 0) +
		   (it->tags_json ? strlen(it->tags_json) + 1 : 0);

	for (size_t i = 0; i < it->ntags; i++)
		n += sizeof(it->tags[i]) + strlen(it->tags[i].key) + 1 +
		     strlen(it->tags[i].value) + 1;
	return n;
}

/* A string field of at most max bytes; why says which one was longer. */
static int get_string_max(json_t *obj, const char *key, bool required,
			  size_t max, char **ret, const char **why)
{
	json_t *v = field(obj, key);

	if (v && json_is_string(v) && json_string_length(v) > max) {
		*why = key;
		return -EMSGSIZE;
	}
	return get_string(obj, key, required, ret);
}

/* 0: parsed into *ret, whose name may be one that cannot be a path (the
 * caller skips it, and says so); 1: a version item whose version cannot be
 * a path (skipped); -EMSGSIZE: a field longer than its cap (*why names
 * it); <0: malformed. */
static int parse_item(json_t *o, const struct kvfs_collection_info *coll,
		      const struct item_rules *rules, bool want_version,
		      struct kvfs_object_item *ret, const char **why)
{
	_cleanup_(kvfs_object_item_clear) struct kvfs_object_item it = {0};
	_cleanup_free_ char *id = NULL;
	int r;

	if (!json_is_object(o))
		return -EBADMSG;
	r = get_string_max(o, rules->id, true, ITEM_ID_MAX, &id, why);
	if (r < 0)
		return r;
	if (rules->string) {
		r = get_string_max(o, rules->string, false, rules->string_max,
				   &it.x5t, why);
		if (r < 0)
			return r;
	}
	if (rules->managed && (r = get_bool(o, "managed", &it.managed)) < 0)
		return r;
	if ((r = parse_attrs(o, &it.attrs)) < 0 ||
	    (r = parse_tag_list(o, &it.tags, &it.ntags)) < 0 ||
	    (r = tag_list_json(it.tags, it.ntags, &it.tags_json)) < 0)
		return r;

	r = parse_object_id(id, coll->name, want_version, &it.name,
			    want_version ? &it.version : NULL);
	if (r == 1 && want_version) {
		log_debug("skipping %s version id '%s': not a valid name",
			  coll->noun, id);
		return 1;
	}
	if (r < 0)
		return r;

	*ret = TAKE_STRUCT(it);
	return 0;
}

static int parse_page(json_t *root, const struct kvfs_collection_info *coll,
		      bool want_version, struct kvfs_object_list *append_to,
		      char **ret_next_link, struct kvfs_error *err)
{
	const struct item_rules *rules = item_rules_of(coll);
	_cleanup_free_ char *next = NULL;
	struct kvfs_object_item *items = NULL;
	const char *why = NULL;
	json_t *value, *o;
	size_t n = 0, i, bytes = 0;
	int r = 0;

	if (!rules) {
		kvfs_error_set_message(err, "no listing of '%s' is known",
				       coll->name);
		return -EINVAL;
	}
	value = json_object_get(root, "value");
	if (!json_is_array(value)) {
		kvfs_error_set_message(err, "list page without a value array");
		return -EBADMSG;
	}
	r = get_string(root, "nextLink", false, &next);
	if (r < 0) {
		kvfs_error_set_message(err, "list page with a bad nextLink");
		return r;
	}
	if (next && !*next) {
		free(next);
		next = NULL;
	}

	if (json_array_size(value) > 0) {
		items = calloc(json_array_size(value), sizeof(*items));
		if (!items)
			return -ENOMEM;
	}
	json_array_foreach (value, i, o) {
		r = parse_item(o, coll, rules, want_version, &items[n], &why);
		if (r == -EMSGSIZE) {
			kvfs_error_set_message(
				err, "%s item %zu: '%s' longer than %d bytes",
				coll->noun, i, why,
				why == rules->id ? ITEM_ID_MAX
						 : (int)rules->string_max);
			r = -EBADMSG;
			break;
		}
		if (r < 0) {
			kvfs_error_set_message(err, "malformed %s item %zu",
					       coll->noun, i);
			break;
		}
		if (r == 0)
			bytes += item_bytes(&items[n++]);
		if (append_to->bytes + bytes > KVFS_VAULT_MAX_LIST_BYTES) {
			kvfs_error_set_message(err,
					       "the listing is larger than %u "
					       "MiB",
					       KVFS_VAULT_MAX_LIST_BYTES >> 20);
			r = -E2BIG;
			break;
		}
	}
	if (r >= 0 && n > 0) {
		struct kvfs_object_item *all;

		all = realloc(append_to->items,
			      (append_to->n + n) * sizeof(*all));
		if (!all) {
			r = -ENOMEM;
		} else {
			memcpy(all + append_to->n, items, n * sizeof(*all));
			append_to->items = all;
			append_to->n += n;
			append_to->bytes += bytes;
			n = 0; /* moved */
		}
	}
	for (size_t k = 0; k < n; k++)
		kvfs_object_item_clear(&items[k]);
	free(items);
	if (r < 0)
		return r;

	*ret_next_link = TAKE_PTR(next);
	return 0;
}

int kvfs_vault_parse_page(const char *json, size_t len,
			  const struct kvfs_collection_info *coll,
			  bool want_version, struct kvfs_object_list *append_to,
			  char **ret_next_link, struct kvfs_error *err)
{
	_cleanup_(json_decrefp) json_t *root = NULL;

	if (!coll)
		return -EINVAL;
	root = load(json, len, NULL, err);
	if (!root)
		return -EBADMSG;
	return parse_page(root, coll, want_version, append_to, ret_next_link,
			  err);
}

/* ---- bundle ---- */

void kvfs_cert_bundle_clear(struct kvfs_cert_bundle *b)
{
	if (!b)
		return;
	free(b->id);
	free(b->name);
	free(b->version);
	free(b->x5t);
	free(b->sid);
	free(b->der);
	free(b->tags_json);
	free(b->content_type);
	memset(b, 0, sizeof(*b));
}

static int parse_policy(json_t *root, struct kvfs_cert_bundle *b)
{
	json_t *policy = field(root, "policy"), *kp, *sp;
	int r;

	b->exportable = true;
	if (!policy)
		return 0;
	if (!json_is_object(policy))
		return -EBADMSG;
	kp = field(policy, "key_props");
	if (kp) {
		if (!json_is_object(kp))
			return -EBADMSG;
		r = get_bool(kp, "exportable", &b->exportable);
		if (r < 0)
			return r;
	}
	sp = field(policy, "secret_props");
	if (sp) {
		if (!json_is_object(sp))
			return -EBADMSG;
		r = get_string(sp, "contentType", false, &b->content_type);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_bundle(json_t *root, struct kvfs_cert_bundle *ret,
			struct kvfs_error *err)
{
	_cleanup_(kvfs_cert_bundle_clear) struct kvfs_cert_bundle b = {0};
	json_t *cer;
	int r;

	r = get_string(root, "id", true, &b.id);
	if (r < 0) {
		kvfs_error_set_message(err, "certificate without an id");
		return r;
	}
	r = parse_object_id(b.id, "certificates", true, &b.name, &b.version);
	if (r != 0) {
		kvfs_error_set_message(err, "certificate with a bad id");
		return r == -ENOMEM ? r : -EBADMSG;
	}

	cer = field(root, "cer");
	if (!cer || !json_is_string(cer) || json_string_length(cer) == 0) {
		kvfs_error_set_message(err, "certificate without cer");
		return -EBADMSG;
	}
	r = kvfs_pki_base64_decode(json_string_value(cer),
				   json_string_length(cer), &b.der, &b.der_len);
	if (r == -ENOMEM)
		return r;
	if (r < 0 || b.der_len == 0) {
		kvfs_error_set_message(err, "certificate with a bad cer");
		return -EBADMSG;
	}

	if ((r = get_string(root, "x5t", false, &b.x5t)) < 0 ||
	    (r = get_string(root, "sid", false, &b.sid)) < 0 ||
	    (r = parse_attrs(root, &b.attrs)) < 0 ||
	    (r = parse_tags(root, &b.tags_json)) < 0 ||
	    (r = parse_policy(root, &b)) < 0) {
		kvfs_error_set_message(err, "malformed certificate bundle");
		return r;
	}

	*ret = TAKE_STRUCT(b);
	return 0;
}

int kvfs_vault_parse_bundle(const char *json, size_t len,
			    struct kvfs_cert_bundle *ret,
			    struct kvfs_error *err)
{
	_cleanup_(json_decrefp) json_t *root = NULL;

	root = load(json, len, NULL, err);
	if (!root)
		return -EBADMSG;
	return parse_bundle(root, ret, err);
}

void kvfs_vault_parse_error(const char *json, size_t len,
			    struct kvfs_error *err)
{
	_cleanup_(json_decrefp) json_t *root = NULL;
	json_t *e, *v, *inner;

	if (!err || !json)
		return;
	root = json_loadb(json, len, 0, NULL);
	if (!root || !json_is_object(root))
		return;
	e = json_object_get(root, "error");
	if (!json_is_object(e))
		return;
	v = json_object_get(e, "code");
	if (json_is_string(v))
		snprintf(err->code, sizeof(err->code), "%s",
			 json_string_value(v));
	inner = json_object_get(e, "innererror");
	if (json_is_object(inner)) {
		v = json_object_get(inner, "code");
		if (json_is_string(v))
			snprintf(err->inner, sizeof(err->inner), "%s",
				 json_string_value(v));
	}
	v = json_object_get(e, "message");
	if (json_is_string(v))
		kvfs_error_set_description(err, json_string_value(v));
}

/* ---- requests ---- */

/* One attempt at GET url with a token, doing the challenge and the 401
 * retry.  *ret is the 2xx response's body, a JSON object read once for
 * the caller's parser; any other status, or a body that is no JSON
 * object, is an error with err filled.  *ret_verdict tells the gate what
 * to make of it. */
static int vault_get_once(struct kvfs_vault *v, const char *url,
			  enum kvfs_metrics_endpoint label, long timeout_ms,
			  json_t **ret, struct kvfs_error *err,
			  enum kvfs_verdict *ret_verdict)
{
	bool challenged = false, retried = false;

	for (;;) {
		_cleanup_(kvfs_http_response_clear) struct kvfs_http_response
			resp = {0};
		_cleanup_secret_ char *token = NULL;
		struct kvfs_http_request rq = {.method = "GET",
					       .url = url,
					       .label = label,
					       .timeout_ms = timeout_ms};
		json_t *root;
		bool garbled;
		int r;

		/* Token trouble is auth's to retry, not the vault's. */
		*ret_verdict = KVFS_VERDICT_LOCAL;
		if (kvfs_auth_ready(v->auth)) {
			r = kvfs_auth_get_token(v->auth,
						kvfs_now_ms() + timeout_ms,
						&token, err);
			if (r < 0)
				return r;
			rq.bearer = token;
		}

		r = kvfs_http_perform(v->http, &rq, &resp, err);
		if (r < 0) {
			*ret_verdict = kvfs_backoff_classify_object(r, 0);
			return r;
		}
		*ret_verdict = KVFS_VERDICT_FINAL;

		if (resp.status == 401) {
			int cr = 0;

			if (token)
				kvfs_auth_invalidate(v->auth, token);
			if (resp.www_authenticate)
				cr = kvfs_auth_set_challenge(
					v->auth, v->url, resp.www_authenticate,
					err);
			if (cr < 0) {
				err->http_status = 401;
				kvfs_error_set_endpoint(err, url);
				return cr;
			}
			if (!token && resp.www_authenticate && !challenged) {
				challenged = true;
				continue;
			}
			if (token && !retried) {
				retried = true;
				continue;
			}
		}

		if (resp.status < 200 || resp.status >= 300) {
			kvfs_vault_parse_error(resp.body, resp.len, err);
			if (resp.status >= 300 && resp.status < 400)
				kvfs_error_set_message(err, "redirect not "
							    "followed");
			r = kvfs_http_status_to_errno(resp.status);
			r = r < 0 ? r : -EPROTO;
			*ret_verdict =
				kvfs_backoff_classify_object(r, resp.status);
			return r;
		}

		/* A body cut short or garbled on the way is worth another
		 * attempt; one that is JSON but makes no sense is not: the
		 * vault answered, and the caller's parser would say so. */
		root = load(resp.body, resp.len, &garbled, err);
		if (!root) {
			*ret_verdict = garbled ? kvfs_backoff_classify_object(
							 -EBADMSG, resp.status)
					       : KVFS_VERDICT_OK;
			return -EBADMSG;
		}

		*ret_verdict = KVFS_VERDICT_OK;
		*ret = root;
		return 0;
	}
}

struct get_attempt {
	struct kvfs_vault *v;
	const char *url;
	enum kvfs_metrics_endpoint label;
	json_t **root;
};

static int get_attempt(void *userdata, long timeout_ms, struct kvfs_error *err,
		       enum kvfs_verdict *ret_verdict)
{
	struct get_attempt *a = userdata;

	return vault_get_once(a->v, a->url, a->label, timeout_ms, a->root, err,
			      ret_verdict);
}

/* GET url through the vault's gate (gate.c), url naming the object: 429,
 * 5xx, resets, timeouts and bodies that are not whole JSON are retried
 * with backoff (a 500 or a broken body as this object's trouble only) until
 * deadline_ms (kvfs_now_ms() time): deadline= for a bundle, which a
 * file operation waits for; max(deadline=, 30 s) for each list page. */
static int vault_get_until(struct kvfs_vault *v, const char *url,
			   enum kvfs_metrics_endpoint label,
			   int64_t deadline_ms, json_t **ret,
			   struct kvfs_error *err)
{
	struct get_attempt a = {
		.v = v, .url = url, .label = label, .root = ret};
	int r;

	r = kvfs_gate_run_object(v->gate, url, deadline_ms, get_attempt, &a,
				 err);
	if (r < 0 && !err->endpoint[0])
		kvfs_error_set_endpoint(err, url);
	return r;
}

/* GET url within the deadline of a file operation (deadline=). */
static int vault_get(struct kvfs_vault *v, const char *url,
		     enum kvfs_metrics_endpoint label, json_t **ret,
		     struct kvfs_error *err)
{
	return vault_get_until(v, url, label,
			       kvfs_now_ms() + (int64_t)v->deadline_s * 1000,
			       ret, err);
}

/* What each list page may take, retries included: budget_s, or when 0
 * max(deadline=, 30 s). */
static int64_t list_budget_ms(const struct kvfs_vault *v, unsigned budget_s)
{
	if (budget_s == 0)
		budget_s = v->deadline_s > LIST_BUDGET_MIN_S
				   ? v->deadline_s
				   : LIST_BUDGET_MIN_S;
	return 1000 * (int64_t)budget_s;
}

/* GET url and every page its nextLinks lead to, each page within
 * list_budget (ms).  Takes url. */
static int list_pages(struct kvfs_vault *v, char *first,
		      const struct kvfs_collection_info *coll,
		      bool want_version, int64_t list_budget,
		      struct kvfs_object_list *ret, size_t *ret_pages,
		      struct kvfs_error *err)
{
	_cleanup_(kvfs_object_list_clear) struct kvfs_object_list list = {0};
	_cleanup_free_ uint64_t *seen = NULL;
	_cleanup_free_ char *url = first;
	size_t pages = 0, aseen = 0;

	for (;;) {
		_cleanup_(json_decrefp) json_t *root = NULL;
		char *next = NULL;
		uint64_t h;
		int r;

		r = vault_get_until(
			v, url, want_version ? KVFS_EP_VERSIONS : KVFS_EP_LIST,
			kvfs_now_ms() + list_budget, &root, err);
		if (r < 0)
			return r;
		r = parse_page(root, coll, want_version, &list, &next, err);
		if (r < 0) {
			kvfs_error_set_endpoint(err, url);
			return r;
		}
		pages++;
		if (!next)
			break;

		if (!kvfs_url_same_origin(v->url, next)) {
			kvfs_error_set_endpoint(err, next);
			kvfs_error_set_message(err,
					       "nextLink leaves the vault's "
					       "origin; not followed");
			free(next);
			return -EPROTO;
		}
		if (pages >= KVFS_VAULT_MAX_PAGES) {
			kvfs_error_set_endpoint(err, url);
			kvfs_error_set_message(err, "more than %d list pages",
					       KVFS_VAULT_MAX_PAGES);
			free(next);
			return -E2BIG;
		}
		h = kvfs_fnv1a(next, false); /* the nextLinks seen: a loop */
		for (size_t i = 0; i + 1 < pages; i++) {
			if (seen[i] == h) {
				kvfs_error_set_endpoint(err, next);
				kvfs_error_set_message(
					err, "nextLink repeats; the listing "
					     "loops");
				free(next);
				return -ELOOP;
			}
		}
		r = KVFS_GROW(seen, pages - 1, aseen);
		if (r < 0) {
			free(next);
			return r;
		}
		seen[pages - 1] = h;
		free(url);
		url = next;
	}

	*ret = TAKE_STRUCT(list);
	*ret_pages = pages;
	return 0;
}

int kvfs_vault_list_within(struct kvfs_vault *v, enum kvfs_collection coll,
			   unsigned page_budget_s, struct kvfs_object_list *ret,
			   struct kvfs_error *err)
{
	const struct kvfs_collection_info *info = kvfs_collection_info(coll);
	char *url;
	size_t pages;
	int r;

	if (!info || !item_rules_of(info))
		return -EINVAL;
	if (asprintf(&url, "%s/%s?api-version=%s&maxresults=%d", v->url,
		     info->name, v->api_version, PAGE_SIZE) < 0)
		return -ENOMEM;
	r = list_pages(v, url, info, false, list_budget_ms(v, page_budget_s),
		       ret, &pages, err);
	if (r < 0)
		return r;
	log_debug("listed %zu %s in %zu pages", ret->n, info->name, pages);
	return 0;
}

int kvfs_vault_list_versions(struct kvfs_vault *v, enum kvfs_collection coll,
			     const char *name, struct kvfs_object_list *ret,
			     struct kvfs_error *err)
{
	return kvfs_vault_list_versions_within(v, coll, name, 0, ret, err);
}

int kvfs_vault_list_versions_within(struct kvfs_vault *v,
				    enum kvfs_collection coll, const char *name,
				    unsigned page_budget_s,
				    struct kvfs_object_list *ret,
				    struct kvfs_error *err)
{
	_cleanup_(kvfs_object_list_clear) struct kvfs_object_list list = {0};
	const struct kvfs_collection_info *info = kvfs_collection_info(coll);
	char *url;
	size_t pages;
	int r;

	if (!info || !item_rules_of(info))
		return -EINVAL;
	if (!kvfs_vault_object_name_valid(name)) {
		kvfs_error_set_message(err, "not a valid %s name", info->noun);
		return -ENOENT;
	}
	if (asprintf(&url, "%s/%s/%s/versions?api-version=%s&maxresults=%d",
		     v->url, info->name, name, v->api_version, PAGE_SIZE) < 0)
		return -ENOMEM;
	r = list_pages(v, url, info, true, list_budget_ms(v, page_budget_s),
		       &list, &pages, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < list.n; i++) {
		if (strcasecmp(list.items[i].name, name) != 0) {
			kvfs_error_set_message(err,
					       "the versions of '%s' list %s "
					       "'%s'",
					       name, info->noun,
					       list.items[i].name);
			return -EBADMSG;
		}
	}
	log_debug("listed %zu versions of '%s' in %zu pages", list.n, name,
		  pages);
	*ret = TAKE_STRUCT(list);
	return 0;
}

int kvfs_vault_get_certificate(struct kvfs_vault *v, const char *name,
			       const char *version,
			       struct kvfs_cert_bundle *ret,
			       struct kvfs_error *err)
{
	_cleanup_(json_decrefp) json_t *root = NULL;
	_cleanup_(kvfs_cert_bundle_clear) struct kvfs_cert_bundle b = {0};
	_cleanup_free_ char *url = NULL;
	int r;

	if (!kvfs_vault_object_name_valid(name) ||
	    (version && (!kvfs_vault_object_name_valid(version) ||
			 strcasecmp(version, "pending") == 0))) {
		kvfs_error_set_message(err, "not a valid certificate name");
		return -ENOENT;
	}

	if (asprintf(&url, "%s/certificates/%s%s%s?api-version=%s", v->url,
		     name, version ? "/" : "", version ? version : "",
		     v->api_version) < 0)
		return -ENOMEM;

	r = vault_get(v, url, KVFS_EP_CERTIFICATE, &root, err);
	if (r < 0)
		return r;
	r = parse_bundle(root, &b, err);
	if (r < 0) {
		kvfs_error_set_endpoint(err, url);
		return r;
	}
	if (strcasecmp(b.name, name) != 0 ||
	    (version && strcasecmp(b.version, version) != 0)) {
		kvfs_error_set_endpoint(err, url);
		kvfs_error_set_message(err,
				       "the vault answered with "
				       "certificate '%s'",
				       b.name);
		return -EBADMSG;
	}

	*ret = TAKE_STRUCT(b);
	return 0;
}

/* ---- objects by name ---- */

/* GET /{seg}/{name}/ (the latest version: the trailing slash is the REST
 * API's own spelling) or /{seg}/{name}/{version}, within deadline=: its
 * URL and body.  -ENOENT for a name or version that cannot be one. */
static int get_object(struct kvfs_vault *v, const char *seg, const char *noun,
		      const char *name, const char *version,
		      enum kvfs_metrics_endpoint label, char **ret_url,
		      json_t **ret_root, struct kvfs_error *err)
{
	_cleanup_free_ char *url = NULL;
	int r;

	if (!kvfs_vault_object_name_valid(name) ||
	    (version && (!kvfs_vault_object_name_valid(version) ||
			 strcasecmp(version, "pending") == 0))) {
		kvfs_error_set_message(err, "not a valid %s name", noun);
		return -ENOENT;
	}
	if (asprintf(&url, "%s/%s/%s/%s?api-version=%s", v->url, seg, name,
		     version ? version : "", v->api_version) < 0)
		return -ENOMEM;
	r = vault_get(v, url, label, ret_root, err);
	if (r < 0)
		return r;
	*ret_url = TAKE_PTR(url);
	return 0;
}

/* Whether an answer to url is the object asked for: its id of the vault's
 * origin, its name (and version, when one was asked for) those of the
 * request.  0 or -EBADMSG with err filled. */
static int check_answer(struct kvfs_vault *v, const char *url, const char *noun,
			const char *id, const char *got_name,
			const char *got_version, const char *name,
			const char *version, struct kvfs_error *err)
{
	if (!kvfs_url_same_origin(v->url, id)) {
		kvfs_error_set_endpoint(err, url);
		kvfs_error_set_message(err,
				       "the %s's id is not of the vault's "
				       "origin",
				       noun);
		return -EBADMSG;
	}
	if (strcasecmp(got_name, name) != 0 ||
	    (version && strcasecmp(got_version, version) != 0)) {
		kvfs_error_set_endpoint(err, url);
		kvfs_error_set_message(err,
				       "the vault answered with %s '%s/%s'",
				       noun, got_name, got_version);
		return -EBADMSG;
	}
	return 0;
}

bool kvfs_vault_error_disabled(const struct kvfs_error *err)
{
	return err && err->http_status == 403 &&
	       (strcmp(err->inner, "SecretDisabled") == 0 ||
		strcmp(err->inner, "KeyDisabled") == 0);
}

bool kvfs_vault_error_secret_disabled(const struct kvfs_error *err)
{
	return kvfs_vault_error_disabled(err) &&
	       strcmp(err->inner, "SecretDisabled") == 0;
}

/* ---- secret ---- */

void kvfs_secret_clear(struct kvfs_secret *s)
{
	if (!s)
		return;
	kvfs_secure_free(s->value, s->value_len);
	free(s->content_type);
	free(s->id);
	free(s->name);
	free(s->version);
	tags_free(s->tags, s->ntags);
	free(s->tags_json);
	memset(s, 0, sizeof(*s));
}

static int parse_secret(json_t *root, struct kvfs_secret *ret,
			struct kvfs_error *err)
{
	_cleanup_(kvfs_secret_clear) struct kvfs_secret sec = {0};
	json_t *value;
	int r;

	value = field(root, "value");
	if (!value || !json_is_string(value)) {
		kvfs_error_set_message(err, "secret without a value");
		return -EBADMSG;
	}
	r = get_string(root, "id", true, &sec.id);
	if (r < 0) {
		kvfs_error_set_message(err, "secret without an id");
		return r;
	}
	r = parse_object_id(sec.id, "secrets", true, &sec.name, &sec.version);
	if (r != 0) {
		kvfs_error_set_message(err, "secret with a bad id");
		return r == -ENOMEM ? r : -EBADMSG;
	}
	if ((r = get_string(root, "contentType", false, &sec.content_type)) <
		    0 ||
	    (r = parse_attrs(root, &sec.attrs)) < 0 ||
	    (r = parse_tag_list(root, &sec.tags, &sec.ntags)) < 0 ||
	    (r = parse_tags(root, &sec.tags_json)) < 0 ||
	    (r = get_bool(root, "managed", &sec.managed)) < 0) {
		kvfs_error_set_message(err, "malformed secret bundle");
		return r;
	}

	/* The value's bytes as they are, NULs included. */
	sec.value_len = json_string_length(value);
	sec.value = malloc(sec.value_len + 1);
	if (!sec.value)
		return -ENOMEM;
	memcpy(sec.value, json_string_value(value), sec.value_len + 1);

	*ret = TAKE_STRUCT(sec);
	return 0;
}

int kvfs_vault_parse_secret(const char *json, size_t len,
			    struct kvfs_secret *ret, struct kvfs_error *err)
{
	_cleanup_(json_decrefp) json_t *root = NULL;

	root = load(json, len, NULL, err);
	if (!root)
		return -EBADMSG;
	return parse_secret(root, ret, err);
}

int kvfs_vault_get_secret(struct kvfs_vault *v, const char *sid,
			  struct kvfs_secret *ret, struct kvfs_error *err)
{
	_cleanup_(json_decrefp) json_t *root = NULL;
	_cleanup_(kvfs_secret_clear) struct kvfs_secret sec = {0};
	_cleanup_free_ char *name = NULL, *version = NULL, *url = NULL;
	int r;

	/* The sid comes from the vault, but a token goes with the request:
	 * only to the vault's own origin, and rebuilt from its parts. */
	if (!sid || !kvfs_url_same_origin(v->url, sid) ||
	    parse_object_id(sid, "secrets", true, &name, &version) != 0) {
		kvfs_error_set_message(err, "the certificate's sid is not a "
					    "secret of this vault");
		return -EBADMSG;
	}
	if (asprintf(&url, "%s/secrets/%s/%s?api-version=%s", v->url, name,
		     version, v->api_version) < 0)
		return -ENOMEM;

	r = vault_get(v, url, KVFS_EP_SECRET, &root, err);
	if (r < 0)
		return r;
	r = parse_secret(root, &sec, err);
	if (r < 0) {
		kvfs_error_set_endpoint(err, url);
		return r;
	}
	/* A certificate's secret is PEM or base64 text. */
	if (sec.value_len == 0 || memchr(sec.value, '\0', sec.value_len)) {
		kvfs_error_set_endpoint(err, url);
		kvfs_error_set_message(err, "the certificate's secret is empty "
					    "or holds a NUL");
		return -EBADMSG;
	}
	if (strcasecmp(sec.version, version) != 0) {
		kvfs_error_set_endpoint(err, url);
		kvfs_error_set_message(err,
				       "the vault answered with secret "
				       "version '%s'",
				       sec.version);
		return -EBADMSG;
	}

	*ret = TAKE_STRUCT(sec);
	return 0;
}

int kvfs_vault_get_secret_value(struct kvfs_vault *v, const char *name,
				const char *version, struct kvfs_secret *ret,
				struct kvfs_error *err)
{
	_cleanup_(json_decrefp) json_t *root = NULL;
	_cleanup_(kvfs_secret_clear) struct kvfs_secret sec = {0};
	_cleanup_free_ char *url = NULL;
	int r;

	r = get_object(v, "secrets", "secret", name, version, KVFS_EP_SECRET,
		       &url, &root, err);
	if (r < 0)
		return r;
	r = parse_secret(root, &sec, err);
	if (r < 0) {
		kvfs_error_set_endpoint(err, url);
		return r;
	}
	r = check_answer(v, url, "secret", sec.id, sec.name, sec.version, name,
			 version, err);
	if (r < 0)
		return r;

	*ret = TAKE_STRUCT(sec);
	return 0;
}

/* ---- key ---- */

/* A JWK's key_ops: Key Vault knows eight operations. */
#define KEY_OPS_MAX 32
#define KEY_OP_BYTES_MAX 64

void kvfs_key_bundle_clear(struct kvfs_key_bundle *b)
{
	if (!b)
		return;
	free(b->id);
	free(b->name);
	free(b->version);
	free(b->jwk_json);
	free(b->kty);
	free(b->crv);
	free(b->n);
	free(b->e);
	free(b->x);
	free(b->y);
	for (size_t i = 0; i < b->nkey_ops; i++)
		free(b->key_ops[i]);
	free(b->key_ops);
	tags_free(b->tags, b->ntags);
	free(b->tags_json);
	memset(b, 0, sizeof(*b));
}

static int parse_key_ops(json_t *jwk, struct kvfs_key_bundle *b)
{
	json_t *ops = field(jwk, "key_ops"), *op;
	size_t n = ops ? json_array_size(ops) : 0, i;

	if (ops && (!json_is_array(ops) || n > KEY_OPS_MAX))
		return -EBADMSG;
	b->key_ops = calloc(n + 1, sizeof(*b->key_ops));
	if (!b->key_ops)
		return -ENOMEM;
	json_array_foreach (ops, i, op) {
		if (!json_is_string(op) ||
		    json_string_length(op) > KEY_OP_BYTES_MAX)
			return -EBADMSG;
		if (strlen(json_string_value(op)) != json_string_length(op))
			return -EBADMSG;
		b->key_ops[i] = strdup(json_string_value(op));
		if (!b->key_ops[i])
			return -ENOMEM;
		b->nkey_ops = i + 1;
	}
	return 0;
}

/* The JWK's public members for its kty: n and e, or crv, x and y. */
static int parse_jwk_public(json_t *jwk, struct kvfs_key_bundle *b,
			    struct kvfs_error *err)
{
	static const char *const private_members[] = {"d",  "p",  "q", "dp",
						      "dq", "qi", "k"};
	int r;

	/* A GET never carries them; a key file that did would be private
	 * material in a file of mode 0444. */
	for (size_t i = 0; i < ELEMENTSOF(private_members); i++) {
		if (field(jwk, private_members[i])) {
			kvfs_error_set_message(err,
					       "key with private material "
					       "('%s')",
					       private_members[i]);
			return -EBADMSG;
		}
	}
	switch (kvfs_jwk_family(b->kty)) {
	case KVFS_JWK_RSA:
		if ((r = get_string(jwk, "n", true, &b->n)) < 0 ||
		    (r = get_string(jwk, "e", true, &b->e)) < 0)
			break;
		return 0;
	case KVFS_JWK_EC:
		if ((r = get_string(jwk, "crv", true, &b->crv)) < 0 ||
		    (r = get_string(jwk, "x", true, &b->x)) < 0 ||
		    (r = get_string(jwk, "y", true, &b->y)) < 0)
			break;
		return 0;
	default:
		kvfs_error_set_message(err,
				       "key type '%.32s' has no public key "
				       "kvfs can show",
				       b->kty);
		return -EOPNOTSUPP;
	}
	kvfs_error_set_message(err, "%s key without its public members",
			       b->kty);
	return r;
}

/* The JWK as public.jwk: compact, the vault's member order, a newline. */
static int jwk_text(json_t *jwk, struct kvfs_key_bundle *b)
{
	_cleanup_free_ char *s =
		json_dumps(jwk, JSON_PRESERVE_ORDER | JSON_COMPACT);
	size_t n;

	if (!s)
		return -ENOMEM;
	n = strlen(s);
	b->jwk_json = malloc(n + 2);
	if (!b->jwk_json)
		return -ENOMEM;
	memcpy(b->jwk_json, s, n);
	b->jwk_json[n] = '\n';
	b->jwk_json[n + 1] = '\0';
	b->jwk_len = n + 1;
	return 0;
}

static int parse_key(json_t *root, const char *origin,
		     struct kvfs_key_bundle *ret, struct kvfs_error *err)
{
	_cleanup_(kvfs_key_bundle_clear) struct kvfs_key_bundle b = {0};
	json_t *jwk = field(root, "key");
	int r;

	if (!jwk || !json_is_object(jwk)) {
		kvfs_error_set_message(err, "key bundle without a key");
		return -EBADMSG;
	}
	r = get_string(jwk, "kid", true, &b.id);
	if (r < 0) {
		kvfs_error_set_message(err, "key without a kid");
		return r;
	}
	if (origin && !kvfs_url_same_origin(origin, b.id)) {
		kvfs_error_set_message(err, "the key's kid is not of the "
					    "vault's origin");
		return -EBADMSG;
	}
	r = parse_object_id(b.id, "keys", true, &b.name, &b.version);
	if (r != 0) {
		kvfs_error_set_message(err, "key with a bad kid");
		return r == -ENOMEM ? r : -EBADMSG;
	}
	r = get_string(jwk, "kty", true, &b.kty);
	if (r < 0) {
		kvfs_error_set_message(err, "key without a kty");
		return r;
	}
	r = parse_jwk_public(jwk, &b, err);
	if (r < 0)
		return r;
	if ((r = parse_key_ops(jwk, &b)) < 0 ||
	    (r = parse_attrs(root, &b.attrs)) < 0 ||
	    (r = parse_tag_list(root, &b.tags, &b.ntags)) < 0 ||
	    (r = parse_tags(root, &b.tags_json)) < 0 ||
	    (r = get_bool(root, "managed", &b.managed)) < 0) {
		kvfs_error_set_message(err, "malformed key bundle");
		return r;
	}
	r = jwk_text(jwk, &b);
	if (r < 0)
		return r;

	*ret = TAKE_STRUCT(b);
	return 0;
}

int kvfs_vault_parse_key(const char *json, size_t len, const char *origin,
			 struct kvfs_key_bundle *ret, struct kvfs_error *err)
{
	_cleanup_(json_decrefp) json_t *root = NULL;

	root = load(json, len, NULL, err);
	if (!root)
		return -EBADMSG;
	return parse_key(root, origin, ret, err);
}

int kvfs_vault_get_key(struct kvfs_vault *v, const char *name,
		       const char *version, struct kvfs_key_bundle *ret,
		       struct kvfs_error *err)
{
	_cleanup_(json_decrefp) json_t *root = NULL;
	_cleanup_(kvfs_key_bundle_clear) struct kvfs_key_bundle b = {0};
	_cleanup_free_ char *url = NULL;
	int r;

	/* No label of its own yet: metrics.h has none for keys. */
	r = get_object(v, "keys", "key", name, version, KVFS_EP_OTHER, &url,
		       &root, err);
	if (r < 0)
		return r;
	r = parse_key(root, v->url, &b, err);
	if (r < 0) {
		kvfs_error_set_endpoint(err, url);
		return r;
	}
	r = check_answer(v, url, "key", b.id, b.name, b.version, name, version,
			 err);
	if (r < 0)
		return r;

	*ret = TAKE_STRUCT(b);
	return 0;
}
