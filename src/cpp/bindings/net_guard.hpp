// The one locking rule of the bindings, without Python in it (so the C++
// tests can run it under sanitizers): a core object (surgery::Net, which is
// single-threaded like caffe::Net) shared by Python threads is used by one
// call at a time, each call holding the object's guard for its whole length.
//
// Fork: a thread of the parent may hold a guard when another thread forks.
// That thread does not exist in the child, so the guard would never be
// released there; the child is told so (ForkedWhileInUse) instead of
// waiting forever. The object's state is then whatever the interrupted call
// left, so the child has to load its own.
#ifndef SURGERY_BINDINGS_NET_GUARD_HPP_
#define SURGERY_BINDINGS_NET_GUARD_HPP_

#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <utility>

#include "surgery/base/errors.hpp"

namespace surgery::bindings {

class ForkedWhileInUse : public Error {
 public:
  using Error::Error;
};

class Guard {
 public:
  // Runs call() holding the guard; returns what it returns.
  template <typename F>
  auto run(F&& call) -> decltype(call()) {
    // Set only while held: a holder's pid that is not ours means the holder
    // was a thread of the process we were forked from.
    const pid_t holder = holder_.load();
    if (holder != 0 && holder != getpid()) {
      throw ForkedWhileInUse(
          "this net was in use by another thread when the process forked, so its state in "
          "this process is undefined: load the net again here");
    }
    // The holding thread asking again (a Python layer calling into the net
    // that runs it) would wait for itself forever.
    if (holding_thread_.load() == std::this_thread::get_id()) {
      throw Error("this net is already running a call on this thread (code run by one of its "
                  "layers, a Python layer's, called into the same net): call it from outside");
    }
    std::lock_guard<std::mutex> lock(mutex_);
    holder_.store(getpid());
    holding_thread_.store(std::this_thread::get_id());
    struct Release {
      std::atomic<pid_t>& holder;
      std::atomic<std::thread::id>& thread;
      ~Release() {
        thread.store(std::thread::id());
        holder.store(0);
      }
    } release{holder_, holding_thread_};
    return std::forward<F>(call)();
  }

 private:
  std::mutex mutex_;
  std::atomic<pid_t> holder_{0};
  std::atomic<std::thread::id> holding_thread_{};
};

// A core object with its guard: what the bindings hand to Python.
template <typename T>
class Guarded : public T {
 public:
  using T::T;
  Guard& guard() const { return guard_; }

 private:
  mutable Guard guard_;
};

}  // namespace surgery::bindings

#endif  // SURGERY_BINDINGS_NET_GUARD_HPP_
