// hnswlib_bench - the hnswlib peer of dvec-bench: same command line, same JSON keys.
//
//   hnswlib_bench index --base B.fvecs --queries Q.fvecs --gt G.ivecs
//                       --metric l2|ip|cosine --m 16 --ef-construction 200
//                       --ef 10,20,40,80 --k 10 --threads 1 [--build-threads 2]
//                       [--seed 100] [--repeat 1] [--turn FILE:ID:N] [--json]
//
// Build (bench/peers/run does it into bench/peers/bin/):
//   g++ -O3 -march=native -std=c++17 -pthread -I/usr/include
//       -o bench/peers/bin/hnswlib_bench bench/peers/hnswlib_bench.cpp
// against Debian's header-only hnswlib (libhnswlib-dev, /usr/include/hnswlib, 0.6.2).
//
// What it measures (see docs/benchmarks.md):
//   build_s    wall clock of inserting all base vectors into a HierarchicalNSW
//              (max_elements = n, fixed random seed). With --build-threads T, T
//              std::threads take the next index from an atomic counter and call addPoint,
//              like hnswlib's Python bindings (the first point is added alone first).
//   mem_bytes  VmRSS after the build minus VmRSS just before the index is created
//              (base and queries are already loaded), so: graph + hnswlib's copy of the
//              vectors + its allocator overhead.
//   per ef     setEf(ef); all queries on 1 thread (per-query latency -> p50/p99, qps_1t),
//              then all queries on --threads threads (split by an atomic counter -> qps;
//              with --threads 1 that second run is skipped and qps = qps_1t), recall@k =
//              |returned ids ∩ gt[:k]| / k averaged over queries, and dist_per_query =
//              exact number of distance-function calls per query, counted in a separate,
//              untimed pass (the index's distance function is swapped for a counting
//              wrapper), because hnswlib 0.6.2's own metric_distance_computations counts
//              neighbour-list sizes, not the distances it actually computes.
//   cpu_share  CPU time / wall time of the kept 1-thread pass (below 1: the thread waited
//              for a CPU), qps_cpu: queries per CPU second, best of --repeat.
//   --turn     takes turns with other programs (bench/peers/run --interleave): the build
//              and each timed pass run only when the counter in FILE % N == ID, then add 1
//              (bench/bench_util.h, bench_turn_*, is the same protocol in C).
// For cosine the vectors are normalised and InnerProductSpace is used; ip uses
// InnerProductSpace (distance 1 - <q,x>), l2 uses L2Space (squared L2).
//
// Output: a human table on stdout, or with --json exactly one JSON object on stdout.
// Progress goes to stderr.

#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

[[noreturn]] void die(const std::string &msg) {
    std::fprintf(stderr, "hnswlib_bench: %s\n", msg.c_str());
    std::exit(2);
}

// A TEXMEX file (.fvecs or .ivecs): rows of int32 dim followed by dim 4-byte values.
template <typename T> struct Vecs {
    size_t n = 0, dim = 0;
    std::vector<T> data;
    const T *row(size_t i) const { return data.data() + i * dim; }
};

template <typename T> Vecs<T> read_vecs(const std::string &path) {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    if (!f) die("cannot open " + path);
    size_t size = (size_t)f.tellg();
    f.seekg(0);
    int32_t d = 0;
    if (size < 4 || !f.read((char *)&d, 4) || d <= 0) die(path + ": bad header");
    size_t rowbytes = 4 * ((size_t)d + 1);
    if (size % rowbytes) die(path + ": size is not a whole number of rows");
    Vecs<T> v;
    v.n = size / rowbytes;
    v.dim = (size_t)d;
    v.data.resize(v.n * v.dim);
    f.seekg(0);
    for (size_t i = 0; i < v.n; i++) {
        int32_t di;
        f.read((char *)&di, 4);
        if (di != d) die(path + ": rows of different dimensions");
        f.read((char *)(v.data.data() + i * v.dim), 4 * v.dim);
    }
    if (!f) die(path + ": read error");
    return v;
}

void normalize_rows(Vecs<float> &v) {
    for (size_t i = 0; i < v.n; i++) {
        float *x = v.data.data() + i * v.dim;
        double s = 0;
        for (size_t j = 0; j < v.dim; j++) s += (double)x[j] * x[j];
        if (s > 0) {
            float inv = (float)(1.0 / std::sqrt(s));
            for (size_t j = 0; j < v.dim; j++) x[j] *= inv;
        }
    }
}

long vm_rss_bytes() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6) * 1024L;
    return -1;
}

// Counting wrapper for the distance function (used only in the untimed counting pass).
hnswlib::DISTFUNC<float> g_real_dist = nullptr;
std::atomic<long> g_dist_calls{0};
thread_local long t_dist_calls = 0;
float counting_dist(const void *a, const void *b, const void *param) {
    t_dist_calls++;
    return g_real_dist(a, b, param);
}

// CPU seconds of the calling thread.
double thread_cpu() {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

// Turn taking through a shared counter (see the header and bench/bench_util.h).
struct Turn {
    uint64_t *ctr = nullptr;
    unsigned id = 0, n = 1;
    void wait() const {
        struct timespec ts = {0, 200000};
        while (ctr && __atomic_load_n(ctr, __ATOMIC_ACQUIRE) % n != id) nanosleep(&ts, nullptr);
    }
    void done() const {
        if (ctr) __atomic_fetch_add(ctr, 1, __ATOMIC_ACQ_REL);
    }
};

Turn open_turn(const std::string &spec) {
    size_t c2 = spec.rfind(':');
    size_t c1 = c2 == std::string::npos || c2 == 0 ? std::string::npos : spec.rfind(':', c2 - 1);
    if (c1 == std::string::npos) die("--turn wants FILE:ID:N, not " + spec);
    Turn t;
    t.id = (unsigned)std::atoi(spec.c_str() + c1 + 1);
    t.n = (unsigned)std::atoi(spec.c_str() + c2 + 1);
    if (t.n == 0 || t.id >= t.n) die("--turn wants ID < N: " + spec);
    std::string path = spec.substr(0, c1);
    int fd = open(path.c_str(), O_RDWR);
    void *m = fd < 0 ? MAP_FAILED : mmap(nullptr, 8, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (fd >= 0) close(fd);
    if (m == MAP_FAILED) die("--turn " + path + ": " + std::strerror(errno));
    t.ctr = (uint64_t *)m;
    return t;
}

struct Options {
    std::string base, queries, gt, metric = "l2";
    size_t m = 16, ef_construction = 200, k = 10, seed = 100;
    std::vector<size_t> efs{10, 20, 40, 80};
    int threads = 1, build_threads = 1;
    size_t repeat = 1; // timed passes per ef; the fastest is kept (noise on a shared machine)
    bool json = false;
    std::string turn; // FILE:ID:N or empty
};

void usage() {
    std::fprintf(stderr,
                 "usage: hnswlib_bench index --base B.fvecs --queries Q.fvecs --gt G.ivecs\n"
                 "         [--metric l2|ip|cosine] [--m 16] [--ef-construction 200]\n"
                 "         [--ef 10,20,40,80] [--k 10] [--threads 1] [--build-threads 1]\n"
                 "         [--seed 100] [--repeat 1] [--turn FILE:ID:N] [--json]\n");
    std::exit(2);
}

size_t parse_size(const std::string &flag, const char *s) {
    char *end = nullptr;
    long long v = std::strtoll(s, &end, 10);
    if (!*s || *end || v <= 0) die("bad value for " + flag + ": " + s);
    return (size_t)v;
}

Options parse_args(int argc, char **argv) {
    if (argc < 2 || std::strcmp(argv[1], "index") != 0) usage();
    Options o;
    for (int i = 2; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--json") { o.json = true; continue; }
        if (a == "--help" || a == "-h") usage();
        if (a == "--sq8") die("--sq8 is a dvec option; hnswlib has no SQ8 index");
        if (i + 1 >= argc) die("missing value for " + a);
        const char *v = argv[++i];
        if (a == "--base") o.base = v;
        else if (a == "--queries") o.queries = v;
        else if (a == "--gt") o.gt = v;
        else if (a == "--metric") o.metric = v;
        else if (a == "--m") o.m = parse_size(a, v);
        else if (a == "--ef-construction") o.ef_construction = parse_size(a, v);
        else if (a == "--k") o.k = parse_size(a, v);
        else if (a == "--seed") o.seed = parse_size(a, v);
        else if (a == "--threads") o.threads = (int)parse_size(a, v);
        else if (a == "--repeat") o.repeat = std::max<size_t>(1, parse_size(a, v));
        else if (a == "--build-threads") o.build_threads = (int)parse_size(a, v);
        else if (a == "--turn") o.turn = v;
        else if (a == "--ef") {
            o.efs.clear();
            std::string s = v;
            size_t pos = 0;
            while (pos <= s.size()) {
                size_t c = s.find(',', pos);
                if (c == std::string::npos) c = s.size();
                o.efs.push_back(parse_size(a, s.substr(pos, c - pos).c_str()));
                pos = c + 1;
            }
        } else die("unknown option " + a);
    }
    if (o.base.empty() || o.queries.empty() || o.gt.empty()) usage();
    if (o.metric != "l2" && o.metric != "ip" && o.metric != "cosine")
        die("--metric must be l2, ip or cosine");
    return o;
}

struct Run {
    size_t ef;
    double recall, qps, qps_1t, p50_us, p99_us, dist_per_query;
    double cpu_share, qps_cpu;
};

// Runs all queries on `threads` threads (atomic counter, chunks of 16); returns wall seconds.
template <typename F> double parallel_queries(size_t nq, int threads, F &&one) {
    std::atomic<size_t> next{0};
    auto t0 = Clock::now();
    auto work = [&] {
        for (;;) {
            size_t lo = next.fetch_add(16);
            if (lo >= nq) break;
            size_t hi = std::min(nq, lo + 16);
            for (size_t i = lo; i < hi; i++) one(i);
        }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; t++) pool.emplace_back(work);
    work();
    for (auto &th : pool) th.join();
    return seconds_since(t0);
}

} // namespace

int main(int argc, char **argv) {
    Options o = parse_args(argc, argv);
    Turn turn;
    if (!o.turn.empty()) turn = open_turn(o.turn);

    Vecs<float> base = read_vecs<float>(o.base);
    Vecs<float> queries = read_vecs<float>(o.queries);
    Vecs<int32_t> gt = read_vecs<int32_t>(o.gt);
    if (queries.dim != base.dim) die("base and queries have different dimensions");
    if (gt.n != queries.n) die("gt has a different number of rows than queries");
    if (gt.dim < o.k) die("gt has fewer than k neighbours per query");
    if (o.metric == "cosine") {
        normalize_rows(base);
        normalize_rows(queries);
    }
    const size_t n = base.n, nq = queries.n, dim = base.dim, k = o.k;
    std::fprintf(stderr, "hnswlib_bench: %zu base, %zu queries, dim %zu, metric %s\n", n, nq,
                 dim, o.metric.c_str());

    std::unique_ptr<hnswlib::SpaceInterface<float>> space;
    if (o.metric == "l2") space.reset(new hnswlib::L2Space(dim));
    else space.reset(new hnswlib::InnerProductSpace(dim));

    // ---- build
    turn.wait();
    long rss0 = vm_rss_bytes();
    auto t0 = Clock::now();
    auto *index = new hnswlib::HierarchicalNSW<float>(space.get(), n, o.m, o.ef_construction,
                                                      o.seed);
    if (o.build_threads <= 1 || n < 2) {
        for (size_t i = 0; i < n; i++) index->addPoint(base.row(i), (hnswlib::labeltype)i);
    } else {
        index->addPoint(base.row(0), 0);
        std::atomic<size_t> next{1};
        std::vector<std::thread> pool;
        for (int t = 0; t < o.build_threads; t++)
            pool.emplace_back([&] {
                for (size_t i; (i = next.fetch_add(1)) < n;)
                    index->addPoint(base.row(i), (hnswlib::labeltype)i);
            });
        for (auto &th : pool) th.join();
    }
    double build_s = seconds_since(t0);
    long mem_bytes = vm_rss_bytes() - rss0;
    turn.done();
    std::fprintf(stderr, "hnswlib_bench: built in %.2f s (%d build threads), +%.1f MiB RSS\n",
                 build_s, o.build_threads, mem_bytes / 1048576.0);

    // ---- search
    std::vector<Run> runs;
    std::vector<uint32_t> found(nq); // |returned ∩ gt[:k]| per query
    std::vector<double> lat_us(nq);
    auto search_one = [&](size_t i) {
        auto res = index->searchKnn(queries.row(i), k);
        const int32_t *g = gt.row(i);
        uint32_t hit = 0;
        while (!res.empty()) {
            int32_t id = (int32_t)res.top().second;
            res.pop();
            for (size_t j = 0; j < k; j++)
                if (g[j] == id) { hit++; break; }
        }
        found[i] = hit;
    };
    for (size_t ef : o.efs) {
        index->setEf(ef);
        Run r{};
        r.ef = ef;
        // 1 thread, per-query latency; with --repeat the fastest pass is kept
        std::vector<double> pass_us(nq);
        double cpu_best = -1;
        for (size_t rep = 0; rep < o.repeat; rep++) {
            // The last turn of an ef also holds the untimed counting pass below.
            bool last = rep + 1 == o.repeat && o.threads <= 1;
            turn.wait();
            double c0 = thread_cpu();
            auto s0 = Clock::now();
            for (size_t i = 0; i < nq; i++) {
                auto q0 = Clock::now();
                search_one(i);
                pass_us[i] = std::chrono::duration<double, std::micro>(Clock::now() - q0).count();
            }
            double wall = seconds_since(s0), cpu = thread_cpu() - c0;
            if (!last) turn.done();
            double q = nq / wall;
            if (cpu_best < 0 || cpu < cpu_best) cpu_best = cpu;
            if (q > r.qps_1t) {
                r.qps_1t = q;
                r.cpu_share = cpu / wall;
                lat_us = pass_us;
            }
        }
        r.qps_cpu = nq / cpu_best;
        double hits = 0;
        for (size_t i = 0; i < nq; i++) hits += found[i];
        r.recall = hits / ((double)nq * k);
        std::vector<double> sorted = lat_us;
        std::sort(sorted.begin(), sorted.end());
        auto pct = [&](double p) {
            size_t idx = (size_t)std::ceil(p * nq);
            return sorted[std::min(nq - 1, idx ? idx - 1 : 0)];
        };
        r.p50_us = pct(0.50);
        r.p99_us = pct(0.99);
        // --threads threads
        if (o.threads > 1) {
            for (size_t rep = 0; rep < o.repeat; rep++) {
                turn.wait();
                r.qps = std::max(r.qps, nq / parallel_queries(nq, o.threads, search_one));
                if (rep + 1 < o.repeat) turn.done();
            }
        } else r.qps = r.qps_1t;
        // untimed counting pass
        g_real_dist = index->fstdistfunc_;
        index->fstdistfunc_ = counting_dist;
        g_dist_calls = 0;
        parallel_queries(nq, std::max(1, o.threads), [&](size_t i) {
            long before = t_dist_calls;
            index->searchKnn(queries.row(i), k);
            g_dist_calls += t_dist_calls - before;
        });
        index->fstdistfunc_ = g_real_dist;
        r.dist_per_query = (double)g_dist_calls.load() / nq;
        turn.done();
        runs.push_back(r);
        std::fprintf(stderr,
                     "hnswlib_bench: ef %zu recall %.4f qps %.0f qps_1t %.0f p50 %.0f us\n", ef,
                     r.recall, r.qps, r.qps_1t, r.p50_us);
    }
    delete index;

    // ---- report
    if (o.json) {
        std::printf("{\"system\": \"hnswlib\", \"n\": %zu, \"nq\": %zu, \"dim\": %zu, "
                    "\"metric\": \"%s\", \"m\": %zu, \"ef_construction\": %zu, \"k\": %zu, "
                    "\"threads\": %d, \"build_threads\": %d, "
                    "\"build_s\": %.6f, \"mem_bytes\": %ld, \"runs\": [",
                    n, nq, dim, o.metric.c_str(), o.m, o.ef_construction, k, o.threads,
                    o.build_threads, build_s, mem_bytes);
        for (size_t i = 0; i < runs.size(); i++) {
            const Run &r = runs[i];
            std::printf("%s{\"ef\": %zu, \"recall\": %.6f, \"qps\": %.2f, \"qps_1t\": %.2f, "
                        "\"p50_us\": %.2f, \"p99_us\": %.2f, \"dist_per_query\": %.2f, "
                        "\"cpu_share\": %.3f, \"qps_cpu\": %.1f}",
                        i ? ", " : "", r.ef, r.recall, r.qps, r.qps_1t, r.p50_us, r.p99_us,
                        r.dist_per_query, r.cpu_share, r.qps_cpu);
        }
        std::printf("]}\n");
    } else {
        std::printf("hnswlib %s: n=%zu nq=%zu dim=%zu M=%zu efC=%zu k=%zu threads=%d "
                    "build_threads=%d\n",
                    o.metric.c_str(), n, nq, dim, o.m, o.ef_construction, k, o.threads,
                    o.build_threads);
        std::printf("build %.2f s, memory %.1f MiB\n", build_s, mem_bytes / 1048576.0);
        std::printf("%6s %8s %10s %10s %9s %9s %10s %6s %10s\n", "ef", "recall", "qps",
                    "qps_1t", "p50_us", "p99_us", "dist/q", "cpu%", "qps/cpu-s");
        for (const Run &r : runs)
            std::printf("%6zu %8.4f %10.0f %10.0f %9.1f %9.1f %10.1f %6.1f %10.0f\n", r.ef,
                        r.recall, r.qps, r.qps_1t, r.p50_us, r.p99_us, r.dist_per_query,
                        100.0 * r.cpu_share, r.qps_cpu);
    }
    return 0;
}
