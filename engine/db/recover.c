/*
 * recover.c — opening a database's log: WAL segments replayed into memtables.
 *
 * Segments at or after the manifest's log_number are replayed in order;
 * batches whose sequences an SSTable already holds (<= last_sequence) are
 * skipped; when the memtables fill, the oldest is flushed right here.  The
 * newest segment may end in a torn record (cut off); damage before that is
 * LSM_CORRUPTION unless wal_salvage is set.  Afterwards every replayed
 * batch is visible (visible_seq = last sequence) and new writes go to a
 * fresh segment.  Before the first record the host's recovery hook hears
 * which segments are replayed and which one new writes go to; its replay
 * filter sees each put with the number of its segment.
 *
 * Invariant: the memtables end up holding exactly the batches of the log
 * that no SSTable holds, each linked exactly once.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dbint.h"
#include "status.h"

typedef struct seg_list {
	uint64_t *v;
	size_t n, cap;
} seg_list;

static int collect_segment(void *arg, const char *name)
{
	seg_list *l = arg;
	uint64_t seg;

	if (!lsm_wal_parse_name(name, &seg))
		return LSM_OK;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		uint64_t *v = realloc(l->v, cap * sizeof *v);

		if (v == NULL)
			return LSM_NOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = seg;
	return LSM_OK;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Replay in parallel.  Linking a node into a big skip list is a chain of
 * cache misses, and replaying a log is nothing but that, so records are
 * staged (copied, with their arena chunk already allocated in order) and
 * linked by every core at once: the skip list takes concurrent inserts,
 * and sequences, hence node heights and chunk sizes, do not depend on the
 * order of linking.  A stage is drained before a memtable switch (its
 * flush needs the memtable whole) and at the end.
 */
#define STAGE_BYTES  ((size_t)16 << 20)
#define MAX_REPLAYERS 8

typedef struct replay_job {
	size_t off, len;           /* the rep in the stage buffer */
	uint64_t first;
	uint32_t slot, chunk;
} replay_job;

typedef struct replay_ctx {
	lsm_db *db;
	uint64_t seg;              /* segment being replayed */
	uint8_t *stage;
	size_t used;
	replay_job *jobs;
	size_t njobs, cap;
	int workers;
	uint64_t expect;           /* the sequence the next kept batch must start at */
	uint8_t *scratch;          /* a record's copy for the replay filter */
	size_t scratch_cap;
} replay_ctx;

typedef struct replay_worker {
	replay_ctx *ctx;
	int id, stride;            /* links jobs id, id + stride, ... */
} replay_worker;

static void *link_share(void *arg)
{
	replay_worker *w = arg;
	replay_ctx *ctx = w->ctx;
	lsm_region *r = ctx->db->region;

	for (size_t i = (size_t)w->id; i < ctx->njobs; i += (size_t)w->stride) {
		const replay_job *j = &ctx->jobs[i];

		lsm_mem_insert_batch(lsm_slot_arena(r, j->slot), j->chunk, ctx->stage + j->off,
		                     j->len, j->first);
	}
	return NULL;
}

/* Links every staged record; the stage is empty afterwards.  The shares
 * are fixed before any thread starts; a share whose thread could not be
 * started is linked here. */
static void drain(replay_ctx *ctx)
{
	pthread_t th[MAX_REPLAYERS];
	replay_worker w[MAX_REPLAYERS];
	int n = ctx->njobs > 1000 ? ctx->workers : 1, started[MAX_REPLAYERS] = {0};

	for (int i = 0; i < n; i++)
		w[i] = (replay_worker){ctx, i, n};
	for (int i = 1; i < n; i++)
		started[i] = pthread_create(&th[i], NULL, link_share, &w[i]) == 0;
	link_share(&w[0]);
	for (int i = 1; i < n; i++) {
		if (started[i])
			pthread_join(th[i], NULL);
		else
			link_share(&w[i]);
	}
	ctx->njobs = 0;
	ctx->used = 0;
}

/* Recovery's memtable switch: like a writer's, but the WAL is not open
 * for appends yet, and with every slot taken the oldest immutable
 * memtable is flushed right here (no background thread runs yet). */
static int recovery_switch(replay_ctx *ctx)
{
	lsm_db *db = ctx->db;
	lsm_region *r = db->region;
	int slot, rc;

	drain(ctx);
	/* what is linked is whole: a flush waits for visible_seq to reach the
	 * memtable's last sequence, and nobody else reads or writes yet */
	atomic_store(&r->visible_seq, r->last_seq);
	lsm_db_freeze_active(r);
	while ((slot = lsm_memslot_claim(r)) < 0)
		if ((rc = lsm_flush_oldest(db)) != LSM_OK)
			return rc;
	lsm_db_activate(r, slot, ctx->seg);
	return LSM_OK;
}

static int stage(replay_ctx *ctx, const uint8_t *rep, size_t len, uint64_t first,
                 uint32_t slot, uint32_t chunk)
{
	if (ctx->used + len > STAGE_BYTES && ctx->njobs > 0)
		drain(ctx);
	if (ctx->used + len > STAGE_BYTES) {
		/* one record bigger than the stage: link it right away */
		lsm_mem_insert_batch(lsm_slot_arena(ctx->db->region, slot), chunk, rep, len, first);
		return LSM_OK;
	}
	if (ctx->njobs == ctx->cap) {
		size_t cap = ctx->cap ? 2 * ctx->cap : 4096;
		replay_job *j = realloc(ctx->jobs, cap * sizeof *j);

		if (j == NULL)
			return LSM_NOMEM;
		ctx->jobs = j;
		ctx->cap = cap;
	}
	memcpy(ctx->stage + ctx->used, rep, len);
	ctx->jobs[ctx->njobs++] = (replay_job){ctx->used, len, first, slot, chunk};
	ctx->used += len;
	return LSM_OK;
}

static int filter_entry(void *arg, uint64_t seq, const lsm_batch_entry *e)
{
	replay_ctx *ctx = arg;
	lsm_db *db = ctx->db;

	(void)seq;
	if (e->type == LSM_TYPE_PUT)
		db->opts.replay_filter(db->opts.replay_filter_arg, ctx->seg, e->key,
		                       e->klen, (void *)e->val, e->vlen);
	return LSM_OK;
}

/* A copy of rep whose values the replay filter has seen (and may have
 * rewritten in place), in ctx->scratch. */
static int filtered_copy(replay_ctx *ctx, const uint8_t *rep, size_t len,
                         const uint8_t **out)
{
	if (len > ctx->scratch_cap) {
		uint8_t *n = realloc(ctx->scratch, len);

		if (n == NULL)
			return LSM_NOMEM;
		ctx->scratch = n;
		ctx->scratch_cap = len;
	}
	memcpy(ctx->scratch, rep, len);
	*out = ctx->scratch;
	return lsm_batch_rep_iterate(ctx->scratch, len, lsm_batch_rep_seq(rep), filter_entry,
	                             ctx);
}

/* Replays one WAL record into the memtables, skipping batches an SSTable
 * already holds (flushed memtables are always the oldest, and a batch
 * never spans two memtables, so "all of it <= flushed_seq" decides). */
static int replay_record(void *arg, const uint8_t *rep, size_t len)
{
	replay_ctx *ctx = arg;
	lsm_db *db = ctx->db;
	lsm_region *r = db->region;
	uint64_t first = lsm_batch_rep_seq(rep);
	uint32_t count = lsm_batch_rep_count(rep);
	uint64_t last = first + count - 1;
	size_t need;
	uint32_t chunk;
	int rc;

	if (count == 0 || last <= db->flushed_seq)
		return LSM_OK;
	if (db->opts.replay_filter && (rc = filtered_copy(ctx, rep, len, &rep)) != LSM_OK)
		return rc;
	/* Sequences are contiguous across the log and the tables: a gap means
	 * a flush's edit was lost (a damaged last manifest record looks like a
	 * torn tail) after its WAL segments were deleted.  Salvage mode drops
	 * records on purpose and accepts gaps. */
	if (first != ctx->expect && !db->opts.wal_salvage && ctx->expect != 0)
		return lsm_error_note("", -1, "sequence gap: expected %llu, the record starts at %llu",
		                      (unsigned long long)ctx->expect, (unsigned long long)first);
	ctx->expect = last + 1;
	need = lsm_mem_batch_bytes(rep, len, first);
	if (need > r->arena_size)
		return LSM_FULL;   /* written with a larger memtable_size */
	while ((chunk = lsm_arena_alloc(lsm_slot_arena(r, r->active), need)) == 0)
		if ((rc = recovery_switch(ctx)) != LSM_OK)
			return rc;
	if ((rc = stage(ctx, rep, len, first, r->active, chunk)) != LSM_OK)
		return rc;
	atomic_store(&r->mem[r->active].last_seq, last);
	if (last > r->last_seq)
		r->last_seq = last;
	return LSM_OK;
}

static int count_segment(void *arg, const char *name)
{
	uint64_t *n = arg, seg;

	if (lsm_wal_parse_name(name, &seg))
		(*n)++;
	return LSM_OK;
}

void lsm_db_count_wal_segments(lsm_db *db)
{
	uint64_t n = 0;

	if (db->env->list_dir(db->env, db->dir, count_segment, &n) == LSM_OK)
		atomic_store(&db->region->n_wal_segments, n);
}

int lsm_db_recover(lsm_db *db)
{
	lsm_region *r = db->region;
	seg_list segs = {0};
	replay_ctx ctx = {0};
	uint64_t next_seg = db->log_number > 0 ? db->log_number : 1;
	char path[4096];
	size_t i, first = 0;
	int rc, flags, slot;

	rc = db->env->list_dir(db->env, db->dir, collect_segment, &segs);
	if (rc == LSM_OK && segs.n > 0) {
		qsort(segs.v, segs.n, sizeof *segs.v, cmp_u64);
		/* segments below log_number are flushed and about to be removed */
		while (first < segs.n && segs.v[first] < db->log_number)
			first++;
		if (segs.v[segs.n - 1] + 1 > next_seg)
			next_seg = segs.v[segs.n - 1] + 1;
	}
	/* The segment log_number names always exists (it was created before
	 * any edit named it, and only older ones are deleted).  Missing while
	 * newer ones exist, a later edit that deleted it was lost: the
	 * manifest is behind the files, and opening would drop a flush. */
	if (db->log_number > 0 && first < segs.n && segs.v[first] != db->log_number &&
	    !db->opts.wal_salvage) {
		free(segs.v);
		lsm_wal_path(db->dir, db->log_number, path, sizeof path);
		return lsm_error_note(path, -1, "WAL segment missing, though the manifest needs it");
	}
	if (db->opts.recovery_hook &&
	    db->opts.recovery_hook(db->opts.recovery_hook_arg,
	                           first < segs.n ? segs.v[first] : next_seg, next_seg) != 0) {
		free(segs.v);
		return LSM_IOERR;
	}
	ctx.db = db;
	ctx.expect = db->flushed_seq + 1;
	/* shared mode starts no thread, not even for recovery */
	ctx.workers = db->shared ? 1 : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (ctx.workers < 1)
		ctx.workers = 1;
	if (ctx.workers > MAX_REPLAYERS)
		ctx.workers = MAX_REPLAYERS;
	if ((ctx.stage = malloc(STAGE_BYTES)) == NULL) {
		free(segs.v);
		return LSM_NOMEM;
	}
	r->last_seq = db->flushed_seq;
	slot = lsm_memslot_claim(r);
	lsm_db_activate(r, slot, first < segs.n ? segs.v[first] : next_seg);
	for (i = first; i < segs.n && rc == LSM_OK; i++) {
		lsm_wal_path(db->dir, segs.v[i], path, sizeof path);
		flags = (i + 1 == segs.n ? LSM_WAL_TAIL_OK : 0) |
		        (db->opts.wal_salvage ? LSM_WAL_SALVAGE : 0);
		ctx.seg = segs.v[i];
		rc = lsm_wal_replay_segment(db->env, path, segs.v[i], flags,
		                            replay_record, &ctx,
		                            &r->recovered_records,
		                            &r->recovered_bytes_dropped, NULL);
	}
	drain(&ctx);
	free(ctx.stage);
	free(ctx.jobs);
	free(ctx.scratch);
	atomic_store(&r->n_wal_segments, segs.n - first);
	free(segs.v);
	if (rc != LSM_OK)
		return rc;
	atomic_store(&r->visible_seq, r->last_seq);
	return lsm_wal_start_segment(db, next_seg);
}
