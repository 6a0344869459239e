/* Jobs on threads: the pattern every parallel pass of the core uses. Plain C, no Lua. */
#ifndef LEADQ_RUN_JOBS_H
#define LEADQ_RUN_JOBS_H

#include <pthread.h>
#include <stddef.h>

#define LQ_RUN_MAX_JOBS 64   /* the most threads any pass starts */

/* fn on each of n jobs (n <= LQ_RUN_MAX_JOBS, elem bytes apart): jobs 1.. on threads of their own,
** job 0 here; a thread that cannot be started has its job run here after the others (the same
** result, later). */
static inline void lq_run_jobs(void *(*fn)(void *), void *jobs, size_t elem, int n) {
  pthread_t ids[LQ_RUN_MAX_JOBS];
  int started[LQ_RUN_MAX_JOBS];
  int t;
  for (t = 1; t < n; t++) started[t] = pthread_create(&ids[t], NULL, fn, (char *)jobs + (size_t)t * elem) == 0;
  fn(jobs);
  for (t = 1; t < n; t++) {
    if (started[t]) pthread_join(ids[t], NULL);
    else fn((char *)jobs + (size_t)t * elem);
  }
}

#endif
