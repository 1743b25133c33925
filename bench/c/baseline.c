/*
 * protocol-otr benchmark suite: the C baseline.
 *
 * Drives the system libotr (4.1.x) directly, on one thread, with two
 * OtrlUserStates ("alice" and "bob") living in this one process.  Messages
 * produced by inject_message go onto an in-memory FIFO queue; a pump loop
 * hands each one to otrl_message_receiving on the other userstate.  This is
 * the physical limit any binding of libotr can reach on this machine: no
 * threads, no event loop, no copies beyond the ones libotr itself makes.
 *
 * Usage:
 *   baseline <scenario> [--n N] [--repeats R] [--contacts C] [--keys DIR] [--quick]
 *   baseline genkeys DIR          write DIR/alice.key and DIR/bob.key
 *
 * Each scenario prints exactly one JSON line on stdout; diagnostics go to
 * stderr.  See bench/README.md for the scenario definitions, which are shared
 * with the JavaScript implementations.
 *
 * Naming: alice's account "alice" talks to contacts "bob0".."bob<C-1>";
 * bob's account "bob" talks to contacts "alice0".."alice<C-1>".  Conversation
 * i is alice/"bob<i>" <-> bob/"alice<i>".  Each side holds one DSA key; every
 * conversation therefore creates one secure context on each side.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gcrypt.h>
/* libotr's headers are not self-contained: proto.h before message.h */
#include <libotr/proto.h>
#include <libotr/tlv.h>
#include <libotr/context.h>
#include <libotr/instag.h>
#include <libotr/privkey.h>
#include <libotr/userstate.h>
#include <libotr/message.h>

#define PROTO "bench"
#define SMP_QUESTION "What is the name of the benchmark?"
#define SMP_SECRET "protocol-otr bench \xc3\xa9t\xc3\xa9"
#define FRAG_MMS 1400
#define MEMORY_BATCH 100

/* ------------------------------------------------------------------ */
/* Small utilities                                                     */

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("baseline: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory");
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    memcpy(p, s, n);
    return p;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check_gcry(gcry_error_t err, const char *what)
{
    if (err) die("%s: %s", what, gcry_strerror(err));
}

/* ------------------------------------------------------------------ */
/* The two parties and the wire                                        */

struct bench;

struct side {
    int id;                  /* 0 = alice, 1 = bob */
    const char *account;     /* our account name */
    const char *peer_prefix; /* prefix of our contacts' names */
    OtrlUserState us;
    struct bench *b;
    unsigned secure;         /* gone_secure calls seen */
    unsigned smp_success;
    ConnContext **ctx;       /* per conversation: the secure instance context */
};

struct qmsg {
    struct qmsg *next;
    int to;        /* receiving side */
    unsigned idx;  /* conversation */
    char *text;
};

/* Called for every message that otrl_message_receiving hands to the user. */
typedef void (*deliver_fn)(struct bench *b, int to, unsigned idx,
        const char *msg);

struct bench {
    struct side s[2];
    unsigned contacts;       /* conversations set up in this bench */
    char **names[2];         /* names[0][i] = "alice<i>", names[1][i] = "bob<i>" */
    struct qmsg *head, *tail;
    size_t queued, max_queued;
    int mms;                 /* what max_message_size returns (0 = no fragmentation) */
    deliver_fn deliver;
    void *scen;              /* scenario state for deliver */
    /* SMP: a responder asked for the answer; answer after receiving returns */
    ConnContext *smp_pending;
    int smp_pending_side;
    unsigned long delivered;
    unsigned long injected;
    unsigned long errors;
    /* smp: the longest single libotr call (what one call can hold a thread for), seconds */
    int time_calls;
    double longest_call;
};

static void note_call(struct bench *b, double t0)
{
    double spent;
    if (!b->time_calls) return;
    spent = now_s() - t0;
    if (spent > b->longest_call) b->longest_call = spent;
}

static void q_push(struct bench *b, int to, unsigned idx, const char *text)
{
    struct qmsg *m = xmalloc(sizeof *m);
    m->next = NULL;
    m->to = to;
    m->idx = idx;
    m->text = xstrdup(text);
    if (b->tail) b->tail->next = m; else b->head = m;
    b->tail = m;
    b->queued++;
    if (b->queued > b->max_queued) b->max_queued = b->queued;
    b->injected++;
}

static struct qmsg *q_pop(struct bench *b)
{
    struct qmsg *m = b->head;
    if (m) {
        b->head = m->next;
        if (!b->head) b->tail = NULL;
        b->queued--;
    }
    return m;
}

static unsigned idx_of(const struct side *s, const char *name)
{
    size_t pl = strlen(s->peer_prefix);
    char *end;
    unsigned long v;
    if (strncmp(name, s->peer_prefix, pl) != 0)
        die("unexpected contact name %s", name);
    v = strtoul(name + pl, &end, 10);
    if (*end || v >= s->b->contacts) die("unexpected contact name %s", name);
    return (unsigned)v;
}

/* ------------------------------------------------------------------ */
/* libotr callbacks                                                    */

static OtrlPolicy op_policy(void *opdata, ConnContext *context)
{
    (void)opdata; (void)context;
    return OTRL_POLICY_DEFAULT;
}

static int op_is_logged_in(void *opdata, const char *accountname,
        const char *protocol, const char *recipient)
{
    (void)opdata; (void)accountname; (void)protocol; (void)recipient;
    return 1;
}

static void op_inject(void *opdata, const char *accountname,
        const char *protocol, const char *recipient, const char *message)
{
    struct side *s = opdata;
    (void)accountname; (void)protocol;
    q_push(s->b, 1 - s->id, idx_of(s, recipient), message);
}

static void op_gone_secure(void *opdata, ConnContext *context)
{
    struct side *s = opdata;
    unsigned i = idx_of(s, context->username);
    s->secure++;
    s->ctx[i] = context;
}

static void op_gone_insecure(void *opdata, ConnContext *context)
{
    struct side *s = opdata;
    (void)context;
    s->b->errors++;
    fprintf(stderr, "baseline: unexpected gone_insecure\n");
}

static void op_still_secure(void *opdata, ConnContext *context, int is_reply)
{
    (void)opdata; (void)context; (void)is_reply;
}

static int op_max_message_size(void *opdata, ConnContext *context)
{
    struct side *s = opdata;
    (void)context;
    return s->b->mms;
}

static const char *op_error_message(void *opdata, ConnContext *context,
        OtrlErrorCode err_code)
{
    struct side *s = opdata;
    (void)context;
    s->b->errors++;
    fprintf(stderr, "baseline: otr_error_message(%d)\n", (int)err_code);
    return "benchmark error";
}

static void op_error_message_free(void *opdata, const char *msg)
{
    (void)opdata; (void)msg;  /* static string */
}

static void op_smp_event(void *opdata, OtrlSMPEvent ev, ConnContext *context,
        unsigned short progress, char *question)
{
    struct side *s = opdata;
    struct bench *b = s->b;
    (void)progress;
    switch (ev) {
    case OTRL_SMPEVENT_ASK_FOR_ANSWER:
        if (!question || strcmp(question, SMP_QUESTION) != 0) {
            b->errors++;
            fprintf(stderr, "baseline: SMP question mismatch\n");
        }
        b->smp_pending = context;
        b->smp_pending_side = s->id;
        break;
    case OTRL_SMPEVENT_IN_PROGRESS:
        break;
    case OTRL_SMPEVENT_SUCCESS:
        s->smp_success++;
        break;
    default:
        b->errors++;
        fprintf(stderr, "baseline: unexpected SMP event %d\n", (int)ev);
        break;
    }
}

static void op_msg_event(void *opdata, OtrlMessageEvent ev,
        ConnContext *context, const char *message, gcry_error_t err)
{
    struct side *s = opdata;
    (void)context;
    if (ev == OTRL_MSGEVENT_LOG_HEARTBEAT_RCVD ||
            ev == OTRL_MSGEVENT_LOG_HEARTBEAT_SENT)
        return;
    s->b->errors++;
    fprintf(stderr, "baseline: %s: message event %d (%s) %s\n", s->account,
            (int)ev, message ? message : "", err ? gcry_strerror(err) : "");
}

static void op_timer_control(void *opdata, unsigned int interval)
{
    /* Runs are far shorter than libotr's poll interval; nothing to clean. */
    (void)opdata; (void)interval;
}

static OtrlMessageAppOps ops;

static void ops_init(void)
{
    memset(&ops, 0, sizeof ops);
    ops.policy = op_policy;
    ops.is_logged_in = op_is_logged_in;
    ops.inject_message = op_inject;
    ops.gone_secure = op_gone_secure;
    ops.gone_insecure = op_gone_insecure;
    ops.still_secure = op_still_secure;
    ops.max_message_size = op_max_message_size;
    ops.otr_error_message = op_error_message;
    ops.otr_error_message_free = op_error_message_free;
    ops.handle_smp_event = op_smp_event;
    ops.handle_msg_event = op_msg_event;
    ops.timer_control = op_timer_control;
}

/* ------------------------------------------------------------------ */
/* Setup / teardown                                                    */

struct keys {
    char alice[4096];
    char bob[4096];
};

static void add_instag(OtrlUserState us, const char *account)
{
    FILE *f = tmpfile();
    if (!f) die("tmpfile: %s", strerror(errno));
    check_gcry(otrl_instag_generate_FILEp(us, f, account, PROTO),
            "otrl_instag_generate_FILEp");
    fclose(f);
}

static char **make_names(const char *prefix, unsigned n)
{
    char **v = xmalloc(sizeof *v * (n ? n : 1));
    char buf[64];
    unsigned i;
    for (i = 0; i < n; i++) {
        snprintf(buf, sizeof buf, "%s%u", prefix, i);
        v[i] = xstrdup(buf);
    }
    return v;
}

static void free_names(char **v, unsigned n)
{
    unsigned i;
    for (i = 0; i < n; i++) free(v[i]);
    free(v);
}

static struct bench *bench_new(const struct keys *k, unsigned contacts)
{
    struct bench *b = xmalloc(sizeof *b);
    int i;
    memset(b, 0, sizeof *b);
    b->contacts = contacts;
    b->names[0] = make_names("alice", contacts);
    b->names[1] = make_names("bob", contacts);
    for (i = 0; i < 2; i++) {
        struct side *s = &b->s[i];
        s->id = i;
        s->b = b;
        s->account = i == 0 ? "alice" : "bob";
        s->peer_prefix = i == 0 ? "bob" : "alice";
        s->us = otrl_userstate_create();
        if (!s->us) die("otrl_userstate_create failed");
        check_gcry(otrl_privkey_read(s->us, i == 0 ? k->alice : k->bob),
                "otrl_privkey_read");
        if (!otrl_privkey_find(s->us, s->account, PROTO))
            die("key file has no key for %s/%s", s->account, PROTO);
        add_instag(s->us, s->account);
        s->ctx = xmalloc(sizeof *s->ctx * (contacts ? contacts : 1));
        memset(s->ctx, 0, sizeof *s->ctx * (contacts ? contacts : 1));
    }
    return b;
}

static void bench_free(struct bench *b)
{
    struct qmsg *m;
    int i;
    while ((m = q_pop(b)) != NULL) {
        free(m->text);
        free(m);
    }
    for (i = 0; i < 2; i++) {
        otrl_userstate_free(b->s[i].us);
        free(b->s[i].ctx);
        free_names(b->names[i], b->contacts);
    }
    free(b);
}

/* ------------------------------------------------------------------ */
/* Sending and pumping                                                 */

static void send_text(struct bench *b, int from, unsigned idx, const char *text)
{
    struct side *s = &b->s[from];
    char *out = NULL;
    gcry_error_t err = otrl_message_sending(s->us, &ops, s, s->account, PROTO,
            b->names[1 - from][idx], OTRL_INSTAG_BEST, text, NULL, &out,
            OTRL_FRAGMENT_SEND_ALL, NULL, NULL, NULL);
    check_gcry(err, "otrl_message_sending");
    /* With OTRL_FRAGMENT_SEND_ALL libotr has injected everything already;
     * a NULL result would mean "send the original" (never happens here:
     * every send is a query or goes to an encrypted context). */
    if (!out) die("otrl_message_sending returned no message");
    otrl_message_free(out);
}

/* Deliver queued messages until the queue is empty. */
static void pump(struct bench *b)
{
    struct qmsg *m;
    while ((m = q_pop(b)) != NULL) {
        struct side *to = &b->s[m->to];
        char *newmsg = NULL;
        OtrlTLV *tlvs = NULL;
        double t0 = b->time_calls ? now_s() : 0;
        int ignore = otrl_message_receiving(to->us, &ops, to, to->account,
                PROTO, b->names[1 - m->to][m->idx], m->text, &newmsg, &tlvs,
                NULL, NULL, NULL);
        note_call(b, t0);
        if (tlvs) otrl_tlv_free(tlvs);
        if (!ignore && newmsg) {
            b->delivered++;
            if (b->deliver) b->deliver(b, m->to, m->idx, newmsg);
        }
        if (newmsg) otrl_message_free(newmsg);
        free(m->text);
        free(m);
        if (b->smp_pending) {
            ConnContext *c = b->smp_pending;
            struct side *rs = &b->s[b->smp_pending_side];
            b->smp_pending = NULL;
            t0 = b->time_calls ? now_s() : 0;
            otrl_message_respond_smp(rs->us, &ops, rs, c,
                    (const unsigned char *)SMP_SECRET, strlen(SMP_SECRET));
            note_call(b, t0);
        }
    }
}

/* Start AKEs on conversations [from, to) and pump until all are secure. */
static void ake_range(struct bench *b, unsigned from, unsigned to)
{
    unsigned i, want0 = b->s[0].secure + (to - from),
             want1 = b->s[1].secure + (to - from);
    for (i = from; i < to; i++) send_text(b, 0, i, "?OTR?");
    pump(b);
    if (b->s[0].secure != want0 || b->s[1].secure != want1)
        die("AKE did not complete (%u/%u, %u/%u)", b->s[0].secure, want0,
                b->s[1].secure, want1);
    for (i = from; i < to; i++) {
        if (!b->s[0].ctx[i] || !b->s[1].ctx[i] ||
                b->s[0].ctx[i]->msgstate != OTRL_MSGSTATE_ENCRYPTED ||
                b->s[1].ctx[i]->msgstate != OTRL_MSGSTATE_ENCRYPTED ||
                b->s[0].ctx[i]->protocol_version != 3)
            die("conversation %u not encrypted with v3", i);
    }
}

/* ------------------------------------------------------------------ */
/* Results                                                             */

struct opts {
    const char *scenario;
    long n;
    long repeats;
    long contacts;
    int quick;
    const char *keydir;
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_of(const double *v, long n)
{
    double *t = xmalloc(sizeof *t * (size_t)n);
    double m;
    memcpy(t, v, sizeof *t * (size_t)n);
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    m = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
    free(t);
    return m;
}

/* Print the JSON line; extra is a preformatted ",\"k\":v..." tail or "". */
static void emit(const struct opts *o, const char *unit, long n,
        const double *v, long r, const char *extra)
{
    double mn = v[0], mx = v[0], load[1] = { -1 };
    long i;
    if (getloadavg(load, 1) != 1) load[0] = -1;
    for (i = 1; i < r; i++) {
        if (v[i] < mn) mn = v[i];
        if (v[i] > mx) mx = v[i];
    }
    printf("{\"impl\":\"c\",\"scenario\":\"%s\",\"unit\":\"%s\",\"n\":%ld,"
            "\"repeats\":[", o->scenario, unit, n);
    for (i = 0; i < r; i++) printf("%s%.3f", i ? "," : "", v[i]);
    printf("],\"median\":%.3f,\"min\":%.3f,\"max\":%.3f,\"quick\":%s,"
            "\"libotr\":\"%s\",\"load1\":%.2f%s}\n", median_of(v, r), mn, mx,
            o->quick ? "true" : "false", otrl_version(), load[0], extra);
    fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* Scenarios                                                           */

/* Payload i: "%08lu" then a fixed ASCII pattern, exactly len bytes. */
static void fill_payload(char *buf, size_t len, unsigned long i)
{
    char num[32];
    size_t k, nl = (size_t)snprintf(num, sizeof num, "%08lu", i);
    for (k = 0; k < len; k++)
        buf[k] = (char)('a' + (k * 7 + 3) % 26);
    memcpy(buf, num, nl < len ? nl : len);
    buf[len] = '\0';
}

struct oneway_state {
    char *expect;
    size_t len;
    unsigned long got;
};

static void deliver_oneway(struct bench *b, int to, unsigned idx,
        const char *msg)
{
    struct oneway_state *st = b->scen;
    (void)idx;
    if (to != 1 || strlen(msg) != st->len || memcmp(msg, st->expect, st->len))
        die("payload mismatch at message %lu", st->got);
    st->got++;
}

/* msg_oneway_<len> and frag: alice sends n messages, bob decrypts each. */
static void scen_oneway(const struct opts *o, const struct keys *k,
        size_t len, int mms)
{
    double *v = xmalloc(sizeof *v * (size_t)o->repeats);
    struct oneway_state st;
    long r;
    char extra[128];
    st.len = len;
    st.expect = xmalloc(len + 1);
    for (r = 0; r < o->repeats; r++) {
        struct bench *b = bench_new(k, 1);
        unsigned long i, injected0;
        double t0, t1;
        ake_range(b, 0, 1);
        b->mms = mms;
        b->deliver = deliver_oneway;
        b->scen = &st;
        st.got = 0;
        injected0 = b->injected;
        t0 = now_s();
        for (i = 0; i < (unsigned long)o->n; i++) {
            fill_payload(st.expect, len, i);
            send_text(b, 0, 0, st.expect);
            pump(b);
        }
        t1 = now_s();
        if (st.got != (unsigned long)o->n) die("lost messages");
        if (b->errors) die("%lu libotr errors", b->errors);
        v[r] = (double)o->n / (t1 - t0);
        snprintf(extra, sizeof extra, ",\"payload_bytes\":%zu,"
                "\"wire_messages_per_msg\":%.2f", len,
                (double)(b->injected - injected0) / (double)o->n);
        bench_free(b);
    }
    emit(o, "msg/s", o->n, v, o->repeats, extra);
    free(st.expect);
    free(v);
}

struct conv_state {
    unsigned long until;         /* messages per conversation so far, target */
    unsigned long *sent;         /* per conversation: messages sent */
    unsigned long got;
    char buf[64];
};

static void conv_text(char *buf, size_t sz, unsigned idx, unsigned long k)
{
    snprintf(buf, sz, "c%05u m%08lu", idx, k);  /* 16 ASCII bytes */
}

static void deliver_conv(struct bench *b, int to, unsigned idx,
        const char *msg)
{
    struct conv_state *st = b->scen;
    unsigned long k = st->sent[idx] - 1;  /* the message just delivered */
    /* message k goes alice->bob when k is even, bob->alice when odd */
    if ((int)(k % 2) != (to == 0 ? 1 : 0)) die("conversation out of order");
    conv_text(st->buf, sizeof st->buf, idx, k);
    if (strcmp(msg, st->buf) != 0) die("conversation payload mismatch");
    st->got++;
    if (st->sent[idx] < st->until) {
        /* reply right away: the receiver becomes the sender */
        conv_text(st->buf, sizeof st->buf, idx, st->sent[idx]);
        st->sent[idx]++;
        send_text(b, to, idx, st->buf);
    }
}

/* Every conversation exchanges `count` more messages (even), alice first. */
static void conv_round(struct bench *b, struct conv_state *st,
        unsigned long count)
{
    unsigned i;
    st->until += count;
    st->got = 0;
    for (i = 0; i < b->contacts; i++) {
        conv_text(st->buf, sizeof st->buf, i, st->sent[i]);
        st->sent[i]++;
        send_text(b, 0, i, st->buf);
    }
    pump(b);
    if (st->got != count * b->contacts) die("conversation lost messages");
    if (b->errors) die("%lu libotr errors", b->errors);
}

static void scen_conversation(const struct opts *o, const struct keys *k)
{
    unsigned c = (unsigned)o->contacts;
    double *v = xmalloc(sizeof *v * (size_t)o->repeats);
    struct bench *b = bench_new(k, c);
    struct conv_state st;
    unsigned long per_conv;
    long r, total;
    char extra[128];
    per_conv = (unsigned long)(o->n / (long)c);
    per_conv += per_conv % 2;  /* even: every round starts with alice */
    if (per_conv < 2) per_conv = 2;
    total = (long)(per_conv * c);
    memset(&st, 0, sizeof st);
    st.sent = xmalloc(sizeof *st.sent * c);
    memset(st.sent, 0, sizeof *st.sent * c);
    /* setup, untimed: the AKEs, then one exchange each way so that the
     * measured rounds see the steady state (every message rotates keys) */
    ake_range(b, 0, c);
    b->deliver = deliver_conv;
    b->scen = &st;
    conv_round(b, &st, 2);
    for (r = 0; r < o->repeats; r++) {
        double t0 = now_s();
        conv_round(b, &st, per_conv);
        v[r] = (double)total / (now_s() - t0);
    }
    bench_free(b);
    snprintf(extra, sizeof extra, ",\"conversations\":%u,"
            "\"messages_per_conversation\":%lu", c, per_conv);
    emit(o, "msg/s", total, v, o->repeats, extra);
    free(st.sent);
    free(v);
}

static void scen_ake(const struct opts *o, const struct keys *k)
{
    unsigned c = (unsigned)o->n;
    double *v = xmalloc(sizeof *v * (size_t)o->repeats);
    long r;
    for (r = 0; r < o->repeats; r++) {
        struct bench *b = bench_new(k, c);
        double t0, t1;
        t0 = now_s();
        ake_range(b, 0, c);
        t1 = now_s();
        if (b->errors) die("%lu libotr errors", b->errors);
        v[r] = (double)c / (t1 - t0);
        bench_free(b);
    }
    emit(o, "AKE/s", (long)c, v, o->repeats, "");
    free(v);
}

static void scen_smp(const struct opts *o, const struct keys *k)
{
    double *v = xmalloc(sizeof *v * (size_t)o->repeats);
    struct bench *b = bench_new(k, 1);
    long r;
    char extra[64];
    ake_range(b, 0, 1);
    b->time_calls = 1;
    for (r = 0; r < o->repeats; r++) {
        unsigned a0 = b->s[0].smp_success, b0 = b->s[1].smp_success;
        double t0, t1;
        t0 = now_s();
        otrl_message_initiate_smp_q(b->s[0].us, &ops, &b->s[0], b->s[0].ctx[0],
                SMP_QUESTION, (const unsigned char *)SMP_SECRET,
                strlen(SMP_SECRET));
        note_call(b, t0);
        pump(b);
        t1 = now_s();
        if (b->s[0].smp_success != a0 + 1 || b->s[1].smp_success != b0 + 1)
            die("SMP did not succeed on both sides");
        if (b->errors) die("%lu libotr errors", b->errors);
        v[r] = (t1 - t0) * 1000.0;
    }
    snprintf(extra, sizeof extra, ",\"longest_call_ms\":%.3f", b->longest_call * 1000.0);
    bench_free(b);
    emit(o, "ms", 1, v, o->repeats, extra);
    free(v);
}

static void keygen_to(OtrlUserState us, const char *account,
        const char *file)
{
    void *newkey = NULL;
    check_gcry(otrl_privkey_generate_start(us, account, PROTO, &newkey),
            "otrl_privkey_generate_start");
    check_gcry(otrl_privkey_generate_calculate(newkey),
            "otrl_privkey_generate_calculate");
    check_gcry(otrl_privkey_generate_finish(us, newkey, file),
            "otrl_privkey_generate_finish");
}

static char *make_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char path[4096];
    char *d;
    snprintf(path, sizeof path, "%s/otrbench-XXXXXX", base && *base ? base : "/tmp");
    d = mkdtemp(path);
    if (!d) die("mkdtemp: %s", strerror(errno));
    return xstrdup(d);
}

static void scen_keygen(const struct opts *o)
{
    double *v = xmalloc(sizeof *v * (size_t)o->repeats);
    char *dir = make_tmpdir();
    char file[4200];
    long r;
    snprintf(file, sizeof file, "%s/keygen.key", dir);
    for (r = 0; r < o->repeats; r++) {
        OtrlUserState us = otrl_userstate_create();
        double t0, t1;
        t0 = now_s();
        keygen_to(us, "keygen", file);
        t1 = now_s();
        if (!otrl_privkey_find(us, "keygen", PROTO)) die("keygen: no key");
        otrl_userstate_free(us);
        unlink(file);
        v[r] = (t1 - t0) * 1000.0;
    }
    rmdir(dir);
    free(dir);
    emit(o, "ms", 1, v, o->repeats, ",\"bits\":1024");
    free(v);
}

static long rss_bytes(void)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

static void scen_memory(const struct opts *o, const struct keys *k)
{
    unsigned c = (unsigned)o->n;
    double *v = xmalloc(sizeof *v * (size_t)o->repeats);
    double heap_pc = 0, rss_pc = 0;
    long r;
    char extra[256];
    for (r = 0; r < o->repeats; r++) {
        struct bench *b = bench_new(k, c);
        struct mallinfo2 m0, m1;
        long rss0, rss1;
        unsigned i;
        /* everything the harness needs is allocated by now */
        malloc_trim(0);
        m0 = mallinfo2();
        rss0 = rss_bytes();
        for (i = 0; i < c; i += MEMORY_BATCH)
            ake_range(b, i, i + MEMORY_BATCH < c ? i + MEMORY_BATCH : c);
        m1 = mallinfo2();
        rss1 = rss_bytes();
        if (b->errors) die("%lu libotr errors", b->errors);
        /* both userstates are in this process: 2 secure contexts per
         * conversation */
        heap_pc = ((double)m1.uordblks + (double)m1.hblkhd -
                (double)m0.uordblks - (double)m0.hblkhd) / (2.0 * c);
        rss_pc = (double)(rss1 - rss0) / (2.0 * c);
        v[r] = rss_pc;
        bench_free(b);
        malloc_trim(0);
    }
    snprintf(extra, sizeof extra, ",\"value\":%.1f,\"conversations\":%u,"
            "\"contexts\":%u,\"heap_bytes_per_context\":%.1f,"
            "\"rss_bytes_per_context\":%.1f", median_of(v, o->repeats), c,
            2 * c, heap_pc, rss_pc);
    emit(o, "bytes", (long)c, v, o->repeats, extra);
    free(v);
}

/* ------------------------------------------------------------------ */
/* main                                                                */

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static void genkeys(const char *dir, struct keys *k)
{
    OtrlUserState us;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        die("mkdir %s: %s", dir, strerror(errno));
    snprintf(k->alice, sizeof k->alice, "%s/alice.key", dir);
    snprintf(k->bob, sizeof k->bob, "%s/bob.key", dir);
    if (!file_exists(k->alice)) {
        us = otrl_userstate_create();
        keygen_to(us, "alice", k->alice);
        otrl_userstate_free(us);
    }
    if (!file_exists(k->bob)) {
        us = otrl_userstate_create();
        keygen_to(us, "bob", k->bob);
        otrl_userstate_free(us);
    }
}

static void usage(void)
{
    fputs("usage: baseline <scenario> [--n N] [--repeats R] [--contacts C] "
            "[--keys DIR] [--quick]\n"
            "       baseline genkeys DIR\n"
            "scenarios: msg_oneway_16 msg_oneway_1024 msg_oneway_16384 "
            "conversation ake smp keygen frag memory\n", stderr);
    exit(2);
}

static long parse_long(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < 1) die("bad number: %s", s);
    return v;
}

int main(int argc, char **argv)
{
    struct opts o;
    struct keys k;
    char *tmpdir = NULL;
    long def_n = 0, def_r = 5;
    int i;

    if (argc < 2) usage();
    memset(&o, 0, sizeof o);
    o.scenario = argv[1];

    /* libgcrypt first, then libotr (which installs allocation handlers) */
    if (!gcry_check_version(GCRYPT_VERSION)) die("libgcrypt too old");
    gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
    check_gcry(otrl_init(OTRL_VERSION_MAJOR, OTRL_VERSION_MINOR,
                OTRL_VERSION_SUB), "otrl_init");
    ops_init();

    if (strcmp(o.scenario, "genkeys") == 0) {
        if (argc != 3) usage();
        genkeys(argv[2], &k);
        printf("%s\n%s\n", k.alice, k.bob);
        return 0;
    }

    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) o.quick = 1;
        else if (i + 1 < argc && strcmp(argv[i], "--n") == 0)
            o.n = parse_long(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--repeats") == 0)
            o.repeats = parse_long(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--contacts") == 0)
            o.contacts = parse_long(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--keys") == 0)
            o.keydir = argv[++i];
        else usage();
    }

    /* defaults: roughly 1-3 s per repeat on a 2-core Xeon VM */
    if (strcmp(o.scenario, "msg_oneway_16") == 0) def_n = 1000000;
    else if (strcmp(o.scenario, "msg_oneway_1024") == 0) def_n = 300000;
    else if (strcmp(o.scenario, "msg_oneway_16384") == 0) def_n = 30000;
    else if (strcmp(o.scenario, "conversation") == 0) def_n = 1000;
    else if (strcmp(o.scenario, "ake") == 0) def_n = 100;
    else if (strcmp(o.scenario, "smp") == 0) def_n = 1;
    else if (strcmp(o.scenario, "keygen") == 0) { def_n = 1; def_r = 11; }
    else if (strcmp(o.scenario, "frag") == 0) def_n = 20000;
    else if (strcmp(o.scenario, "memory") == 0) { def_n = 10000; def_r = 1; }
    else usage();
    if (!o.contacts) o.contacts = 100;
    if (o.quick) {
        def_n = def_n / 20 > 0 ? def_n / 20 : 1;
        def_r = 1;
        o.contacts = o.contacts / 20 > 0 ? o.contacts / 20 : 1;
    }
    if (!o.n) o.n = def_n;
    if (!o.repeats) o.repeats = def_r;

    if (strcmp(o.scenario, "keygen") != 0) {
        if (o.keydir) {
            genkeys(o.keydir, &k);
        } else {
            tmpdir = make_tmpdir();
            genkeys(tmpdir, &k);
        }
    }

    if (strcmp(o.scenario, "msg_oneway_16") == 0) scen_oneway(&o, &k, 16, 0);
    else if (strcmp(o.scenario, "msg_oneway_1024") == 0) scen_oneway(&o, &k, 1024, 0);
    else if (strcmp(o.scenario, "msg_oneway_16384") == 0) scen_oneway(&o, &k, 16384, 0);
    else if (strcmp(o.scenario, "frag") == 0) scen_oneway(&o, &k, 16384, FRAG_MMS);
    else if (strcmp(o.scenario, "conversation") == 0) scen_conversation(&o, &k);
    else if (strcmp(o.scenario, "ake") == 0) scen_ake(&o, &k);
    else if (strcmp(o.scenario, "smp") == 0) scen_smp(&o, &k);
    else if (strcmp(o.scenario, "keygen") == 0) scen_keygen(&o);
    else if (strcmp(o.scenario, "memory") == 0) scen_memory(&o, &k);

    if (tmpdir) {
        unlink(k.alice);
        unlink(k.bob);
        rmdir(tmpdir);
        free(tmpdir);
    }
    return 0;
}
