/* test_backend_host.c: the host-side logic around the backends that needs no GPU (label unit).
 *
 *   - the backend name grammar of rlhf_backend_get: "cpu", "cpu/fp32", "cuda[:N][/fp32|/tf32|/bf16]";
 *     a malformed name is "unknown backend", a well-formed CUDA name never is (it opens, or says
 *     the backend is not built or the device is absent);
 *   - $RLHF_CUDA_PRECISION is checked before any device is looked for (CUDA builds only);
 *   - be_sample_uniforms, which the CUDA sampler uses to draw its rows' uniforms on the host,
 *     consumes each row's RNG exactly as the CPU sample op does (one uniform per row unless
 *     greedy), on every path of the op (plain, top-k, top-p, both) and returns those very draws.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_impl.h"
#include "rlhf.h"
#include "test.h"

static void test_names(void) {
    printf("backend names\n");
    const rlhf_backend *be = NULL;
    CHECK_OK(rlhf_backend_get("cpu", &be));
    CHECK(be == rlhf_backend_cpu());
    CHECK_OK(rlhf_backend_get("cpu/fp32", &be));
    CHECK(be == rlhf_backend_cpu());
    CHECK(rlhf_backend_get(NULL, &be) == RLHF_ERR_ARG && be == NULL);

    static const char *const bad[] = {"",           "gpu",         "CUDA",        "cuda:",
                                      "cuda:x",     "cuda0",       "cuda:0/",     "cuda:0/fp64",
                                      "cuda/bf16x", "cuda:-1",     "cuda:99999999", "cpu/bf16",
                                      "cuda:0:1",   "cuda/fp32/x", " cuda",       "cuda:0 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        be = (const rlhf_backend *)1;
        rlhf_status st = rlhf_backend_get(bad[i], &be);
        CHECKF(st == RLHF_ERR_UNSUPPORTED && be == NULL &&
                   strstr(rlhf_last_error(), "unknown backend") != NULL,
               "'%s' -> %s (%s)", bad[i], rlhf_status_name(st), rlhf_last_error());
    }

    static const struct {
        const char *name, *canonical; /* canonical NULL: depends on $RLHF_CUDA_PRECISION */
    } good[] = {{"cuda", NULL},
                {"cuda:0", NULL},
                {"cuda/bf16", "cuda:0/bf16"},
                {"cuda:0/fp32", "cuda:0/fp32"},
                {"cuda:0/tf32", "cuda:0/tf32"},
                {"cuda:15/bf16", "cuda:15/bf16"}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        be = NULL;
        rlhf_status st = rlhf_backend_get(good[i].name, &be);
        if (st == RLHF_OK) {
            printf("  %s opens %s\n", good[i].name, rlhf_backend_name(be));
            CHECK(be != NULL && be->device >= 0);
            if (good[i].canonical)
                CHECKF(strcmp(rlhf_backend_name(be), good[i].canonical) == 0, "%s named %s",
                       good[i].name, rlhf_backend_name(be));
        } else {
            printf("  %s: %s\n", good[i].name, rlhf_last_error());
            CHECKF(st == RLHF_ERR_UNSUPPORTED && be == NULL &&
                       strstr(rlhf_last_error(), "unknown backend") == NULL,
                   "'%s' -> %s (%s)", good[i].name, rlhf_status_name(st), rlhf_last_error());
        }
    }

#ifdef RLHF_HAVE_CUDA
    /* the default precision comes from the environment, checked before any device is looked for */
    setenv("RLHF_CUDA_PRECISION", "fp64", 1);
    rlhf_status st = rlhf_backend_get("cuda", &be);
    CHECKF(st == RLHF_ERR_ARG && strstr(rlhf_last_error(), "RLHF_CUDA_PRECISION") != NULL,
           "cuda with RLHF_CUDA_PRECISION=fp64 -> %s (%s)", rlhf_status_name(st),
           rlhf_last_error());
    /* an explicit suffix does not read it */
    st = rlhf_backend_get("cuda:0/fp32", &be);
    CHECKF(st != RLHF_ERR_ARG, "cuda:0/fp32 read RLHF_CUDA_PRECISION: %s", rlhf_last_error());
    unsetenv("RLHF_CUDA_PRECISION");
#endif
}

/* The CPU sample op and be_sample_uniforms leave every row's RNG in the same state. */
static void test_uniforms(void) {
    printf("be_sample_uniforms vs the CPU sample op\n");
    const rlhf_backend *cpu = rlhf_backend_cpu();
    enum { N = 40, V = 3000 };
    float *x = malloc(sizeof(float) * N * V), *u = malloc(sizeof(float) * N);
    rlhf_rng gen, a[N], b[N], c[N];
    rlhf_rng_seed(&gen, 424242, 5);
    for (int i = 0; i < N * V; i++) x[i] = 2.0f * rlhf_rng_normal(&gen);
    for (int i = 0; i < N; i += 7) x[i * V + 3] = x[i * V + 11] = 40.0f; /* ties */
    const struct {
        float temp;
        int32_t top_k;
        float top_p;
    } cfg[] = {{0, 0, 1}, {1, 0, 1}, {0.8f, 0, 0.9f}, {1.3f, 0, 0.3f}, {1, 50, 1},
               {1, 50, 0.9f}, {1, 1, 1}, {0.5f, 2999, 0.99f}, {0, 5, 0.5f}};
    for (size_t k = 0; k < sizeof cfg / sizeof cfg[0]; k++) {
        for (int i = 0; i < N; i++) rlhf_rng_seed(&a[i], 1000 + (uint64_t)i * 31 + k, 9);
        memcpy(b, a, sizeof a);
        memcpy(c, a, sizeof a);
        int32_t tok[N];
        float logp[N];
        float *xs = malloc(sizeof(float) * N * V); /* the op may use its logits as scratch */
        memcpy(xs, x, sizeof(float) * N * V);
        CHECK_OK(cpu->sample(cpu, tok, logp, xs, a, N, V, cfg[k].temp, cfg[k].top_k, cfg[k].top_p));
        free(xs);
        be_sample_uniforms(b, N, cfg[k].temp, u);
        CHECKF(memcmp(a, b, sizeof a) == 0,
               "T=%g top_k=%d top_p=%g: the CPU op and be_sample_uniforms advance the RNGs "
               "differently", (double)cfg[k].temp, cfg[k].top_k, (double)cfg[k].top_p);
        int drew = memcmp(a, c, sizeof a) != 0, same_u = 1;
        for (int i = 0; i < N; i++)
            if (u[i] != (cfg[k].temp > 0 ? rlhf_rng_uniform(&c[i]) : 0.0f)) same_u = 0;
        CHECKF(drew == (cfg[k].temp > 0), "T=%g: RNG %s", (double)cfg[k].temp,
               drew ? "advanced when greedy" : "not advanced");
        CHECKF(same_u, "T=%g: uniforms differ from the rows' own draws", (double)cfg[k].temp);
        printf("  T=%g top_k=%d top_p=%g: %s\n", (double)cfg[k].temp, cfg[k].top_k,
               (double)cfg[k].top_p, drew ? "one draw per row, same states" : "no draw");
    }
    free(x), free(u);
}

int main(void) {
    test_names();
    test_uniforms();
    TEST_MAIN_END();
}
