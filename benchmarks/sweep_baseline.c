/* The C baseline of benchmarks/sweep_speed.py: a sweep of RMSProp configurations
 * on a 2-D diagonal quadratic f(x) = 1/2 x^T diag(A) x - b^T x.
 *
 * It does the work rmsnum's sweep kernel does, in the same order and with the
 * same roundings, so that its results agree with rmsnum's bit for bit:
 *
 *     for t = 0, 1, ..., steps:
 *         ax = A * x;  g = ax - b
 *         loss = 0.5 * (x0*ax0 + x1*ax1) - (b0*x0 + b1*x1)
 *         if loss is not finite: diverged = t, keep x and loss, stop this configuration
 *         if t == steps: stop
 *         s = gamma * s + omg * (g * g)           omg = 1 - gamma, once per configuration
 *         x = x - (lr * g) / sqrt(s + eps)
 *
 * starting from x = xstart, s = 0. Configurations run in blocks of BLOCK
 * lanes that go through each step together, so that gcc vectorises the lane
 * loops; OpenMP runs the blocks in parallel (OMP_NUM_THREADS threads).
 *
 * Build (the benchmark does this itself):
 *
 *     gcc -O3 -march=native -fno-math-errno -ffp-contract=off -fopenmp -shared -fPIC \
 *         sweep_baseline.c -o libsweep_baseline.so
 *
 * -fno-math-errno lets gcc use the vector square root; -ffp-contract=off
 * forbids fused multiply-adds, which would round differently from rmsnum.
 */

#include <float.h>
#include <math.h>
#include <stdint.h>

#include <omp.h>

#define BLOCK 64

/* Run one block of `width` <= BLOCK configurations (lr[j], gamma[j]) and write
 * its outputs: final_x (width, 2), final_loss (width), diverged (width; the
 * step whose loss was not finite, else -1). Lanes past `width` repeat the last
 * configuration and are not written. */
static void run_block(int64_t steps, const double *A, const double *b, const double *xstart, double eps,
                      int width, const double *lr_in, const double *gamma_in,
                      double *final_x, double *final_loss, int64_t *diverged)
{
    double x0[BLOCK], x1[BLOCK], s0[BLOCK], s1[BLOCK], g0[BLOCK], g1[BLOCK];
    double lr[BLOCK], gamma[BLOCK], omg[BLOCK], value[BLOCK];
    double stop_x0[BLOCK], stop_x1[BLOCK], stop_loss[BLOCK];
    int64_t div[BLOCK];
    const double a0 = A[0], a1 = A[1], b0 = b[0], b1 = b[1], half = 0.5;
    int running = BLOCK;

    for (int j = 0; j < BLOCK; j++) {
        int k = j < width ? j : width - 1;
        lr[j] = lr_in[k];
        gamma[j] = gamma_in[k];
        omg[j] = 1.0 - gamma_in[k];
        x0[j] = xstart[0];
        x1[j] = xstart[1];
        s0[j] = 0.0;
        s1[j] = 0.0;
        div[j] = -1;
    }
    for (int64_t t = 0;; t++) {
        int finite = 1;
        for (int j = 0; j < BLOCK; j++) {
            double ax0 = a0 * x0[j], ax1 = a1 * x1[j];
            g0[j] = ax0 - b0;
            g1[j] = ax1 - b1;
            double quad = x0[j] * ax0 + x1[j] * ax1;
            double lin = b0 * x0[j] + b1 * x1[j];
            value[j] = half * quad - lin;
            finite &= fabs(value[j]) <= DBL_MAX; /* false for inf and NaN */
        }
        if (!finite) {
            for (int j = 0; j < BLOCK; j++) {
                if (!isfinite(value[j])) {
                    if (div[j] < 0) {
                        div[j] = t;
                        running--;
                        stop_x0[j] = x0[j];
                        stop_x1[j] = x1[j];
                        stop_loss[j] = value[j];
                    }
                    /* Park the lane at the minimum of s and x: it stays finite, so
                     * the other lanes keep the vectorised path. */
                    x0[j] = x1[j] = s0[j] = s1[j] = g0[j] = g1[j] = 0.0;
                }
            }
        }
        if (t == steps || running == 0)
            break;
        for (int j = 0; j < BLOCK; j++) {
            s0[j] = gamma[j] * s0[j] + omg[j] * (g0[j] * g0[j]);
            s1[j] = gamma[j] * s1[j] + omg[j] * (g1[j] * g1[j]);
            x0[j] = x0[j] - (lr[j] * g0[j]) / sqrt(s0[j] + eps);
            x1[j] = x1[j] - (lr[j] * g1[j]) / sqrt(s1[j] + eps);
        }
    }
    for (int j = 0; j < width; j++) {
        diverged[j] = div[j];
        if (div[j] < 0) {
            final_x[2 * j] = x0[j];
            final_x[2 * j + 1] = x1[j];
            final_loss[j] = value[j];
        } else {
            final_x[2 * j] = stop_x0[j];
            final_x[2 * j + 1] = stop_x1[j];
            final_loss[j] = stop_loss[j];
        }
    }
}

/* Sweep `nconf` configurations (lr[k], gamma[k]) for `steps` steps from
 * `xstart` on the quadratic (A, b), eps added under the square root.
 * Outputs: final_x (nconf, 2), final_loss (nconf), diverged (nconf). */
void sweep_rmsprop_2d(int64_t nconf, int64_t steps, const double *A, const double *b, const double *xstart,
                      double eps, const double *lr, const double *gamma,
                      double *final_x, double *final_loss, int64_t *diverged)
{
    int64_t nblocks = (nconf + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static)
    for (int64_t blk = 0; blk < nblocks; blk++) {
        int64_t first = blk * BLOCK;
        int width = (int)(nconf - first < BLOCK ? nconf - first : BLOCK);
        run_block(steps, A, b, xstart, eps, width, lr + first, gamma + first,
                  final_x + 2 * first, final_loss + first, diverged + first);
    }
}

/* The number of OpenMP threads a parallel region will use. */
int sweep_threads(void)
{
    return omp_get_max_threads();
}

/* The block width BLOCK. */
int sweep_block(void)
{
    return BLOCK;
}
