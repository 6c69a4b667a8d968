/* Synchronous OffsetCommit load from librdkafka consumers (the client issue 5 names), for
 * scripts/bench/groups.py --client c.  Each thread owns one consumer of GROUP, assigned one
 * partition of TOPIC, and commits offset n+1 synchronously in a loop for SECONDS; prints the
 * total commits/s.  Bounded by SECONDS (plus librdkafka's own timeouts).
 *
 *   cc -O2 -o commit_bench commit_bench.c -lrdkafka -lpthread
 *   ./commit_bench BOOTSTRAP TOPIC GROUP THREADS SECONDS
 */
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const char *bootstrap, *topic, *group;
static double seconds;
static atomic_long total, failures;
static pthread_barrier_t ready;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void set(rd_kafka_conf_t *conf, const char *k, const char *v) {
    char err[256];
    if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "commit_bench: %s=%s: %s\n", k, v, err);
        exit(2);
    }
}

static void *worker(void *arg) {
    int partition = (int)(long)arg;
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", bootstrap);
    set(conf, "group.id", group);
    set(conf, "enable.auto.commit", "false");
    set(conf, "log_level", "3");
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) { fprintf(stderr, "commit_bench: %s\n", err); exit(2); }
    rd_kafka_topic_partition_list_t *assignment = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(assignment, topic, partition)->offset = 0;
    rd_kafka_assign(rk, assignment);
    /* One commit before the clock starts: the coordinator lookup and connection are not measured. */
    rd_kafka_topic_partition_list_t *offsets = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_add(offsets, topic, partition);
    tp->offset = 1;
    rd_kafka_resp_err_t e;
    double give_up = now() + 30;
    while ((e = rd_kafka_commit(rk, offsets, 0)) != RD_KAFKA_RESP_ERR_NO_ERROR && now() < give_up) {
        struct timespec pause = {0, 100 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    if (e) fprintf(stderr, "commit_bench: first commit still failing after 30 s: %s\n", rd_kafka_err2str(e));
    pthread_barrier_wait(&ready);
    double end = now() + seconds;
    long n = 0, bad = 0;
    while (now() < end) {
        tp->offset = n + 2;
        e = rd_kafka_commit(rk, offsets, 0);
        if (e) bad++; else n++;
    }
    atomic_fetch_add(&total, n);
    atomic_fetch_add(&failures, bad);
    rd_kafka_topic_partition_list_destroy(offsets);
    rd_kafka_topic_partition_list_destroy(assignment);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s BOOTSTRAP TOPIC GROUP THREADS SECONDS\n", argv[0]);
        return 2;
    }
    bootstrap = argv[1]; topic = argv[2]; group = argv[3];
    int threads = atoi(argv[4]);
    seconds = atof(argv[5]);
    if (threads < 1 || threads > 256 || seconds <= 0) { fprintf(stderr, "commit_bench: bad THREADS or SECONDS\n"); return 2; }
    pthread_t ids[256];
    pthread_barrier_init(&ready, NULL, threads);
    for (int i = 0; i < threads; i++) pthread_create(&ids[i], NULL, worker, (void *)(long)i);
    for (int i = 0; i < threads; i++) pthread_join(ids[i], NULL);
    printf("%.0f commits/s from %d librdkafka consumers (%ld commits, %ld failed, %.1f s)\n",
           atomic_load(&total) / seconds, threads, atomic_load(&total), atomic_load(&failures), seconds);
    return atomic_load(&failures) > 0 ? 1 : 0;
}
