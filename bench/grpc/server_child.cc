#include "bench/grpc/server_child.h"

#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"

namespace ropewire::bench {

ServerSample operator-(const ServerSample& a, const ServerSample& b) {
  return {a.cpu_us - b.cpu_us, a.engine_us - b.engine_us, a.sample_us - b.sample_us,
          a.execute_us - b.execute_us, a.steps - b.steps};
}

absl::StatusOr<std::unique_ptr<ServerChild>> ServerChild::Start(const std::string& self_exe,
                                                                const std::string& kind,
                                                                int vocab_size, int cpu) {
  int to_child[2], from_child[2];
  if (::pipe(to_child) != 0 || ::pipe(from_child) != 0) return absl::InternalError("pipe failed");
  std::vector<std::string> args = {self_exe, "--serve", kind, "--vocab",
                                   std::to_string(vocab_size)};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    // Only async-signal-safe work until exec: the parent may already run threads.
    ::dup2(to_child[0], STDIN_FILENO);
    ::dup2(from_child[1], STDOUT_FILENO);
    ::close(to_child[1]);
    ::close(from_child[0]);
    if (cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      ::sched_setaffinity(0, sizeof(set), &set);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(to_child[0]);
  ::close(from_child[1]);
  std::unique_ptr<ServerChild> child(new ServerChild());
  child->pid_ = pid;
  child->to_child_ = ::fdopen(to_child[1], "w");
  child->from_child_ = ::fdopen(from_child[0], "r");
  if (std::fscanf(child->from_child_, " port %d", &child->port_) != 1 || child->port_ <= 0) {
    return absl::UnavailableError(absl::StrCat("the ", kind, " server did not report a port"));
  }
  return child;
}

absl::StatusOr<ServerSample> ServerChild::Sample() {
  std::fputs("sample\n", to_child_);
  std::fflush(to_child_);
  ServerSample s;
  long long cpu = 0, engine = 0, sample = 0, execute = 0, steps = 0;
  if (std::fscanf(from_child_,
                  " cpu_us %lld engine_us %lld sample_us %lld execute_us %lld steps %lld", &cpu,
                  &engine, &sample, &execute, &steps) != 5) {
    return absl::InternalError("the server did not answer a sample request");
  }
  s.cpu_us = cpu;
  s.engine_us = engine;
  s.sample_us = sample;
  s.execute_us = execute;
  s.steps = steps;
  return s;
}

ServerChild::~ServerChild() {
  if (to_child_ != nullptr) {
    std::fputs("quit\n", to_child_);
    std::fclose(to_child_);
  }
  if (from_child_ != nullptr) std::fclose(from_child_);
  if (pid_ > 0) {
    int status = 0;
    for (int i = 0; i < 300; ++i) {  // up to 3 s for a clean shutdown
      if (::waitpid(pid_, &status, WNOHANG) == pid_) return;
      ::usleep(10000);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
  }
}

}  // namespace ropewire::bench
