#include "surgery/runtime/fork_gate.hpp"

#include <pthread.h>

namespace surgery {
namespace {

// Plain pthread objects: the fork handlers hold the mutex across fork().
pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
int inside = 0;        // sections open in the process, nested ones counted once
bool forking = false;  // a fork() is waiting for them to close
thread_local int depth = 0;  // this thread's nesting

void enter() {
  pthread_mutex_lock(&mutex);
  while (forking) pthread_cond_wait(&changed, &mutex);
  ++inside;
  pthread_mutex_unlock(&mutex);
}

void leave() {
  pthread_mutex_lock(&mutex);
  --inside;
  pthread_cond_broadcast(&changed);
  pthread_mutex_unlock(&mutex);
}

// The forking thread's own section (a signal handler that forks) cannot
// close before the fork, so it is not waited for.
void before_fork() {
  pthread_mutex_lock(&mutex);
  forking = true;
  const int own = depth > 0 ? 1 : 0;
  while (inside > own) pthread_cond_wait(&changed, &mutex);
}

void after_fork_in_parent() {
  forking = false;
  pthread_cond_broadcast(&changed);
  pthread_mutex_unlock(&mutex);
}

// The child has only the forking thread: its section is the only one open,
// and the condition is made new since its record of waiters names threads
// the child does not have.
void after_fork_in_child() {
  forking = false;
  inside = depth > 0 ? 1 : 0;
  pthread_cond_init(&changed, nullptr);
  pthread_mutex_unlock(&mutex);
}

// Registered when the library loads, after the BLAS it links (whose own
// fork handler runs after ours, once no thread is inside BLAS).
const int registered = pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);

}  // namespace

CaffeSection::CaffeSection() {
  (void)registered;
  if (depth++ == 0) enter();
}

CaffeSection::~CaffeSection() {
  if (--depth == 0) leave();
}

OutsideCaffeSection::OutsideCaffeSection() : depth_(depth) {
  if (depth_ == 0) return;
  depth = 0;
  leave();
}

OutsideCaffeSection::~OutsideCaffeSection() {
  if (depth_ == 0) return;
  enter();
  depth = depth_;
}

void let_fork_through() {
  if (depth == 0) return;
  pthread_mutex_lock(&mutex);
  const bool waiting = forking;
  pthread_mutex_unlock(&mutex);
  if (!waiting) return;
  leave();
  enter();
}

}  // namespace surgery
