#include "tests/server/server_process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <regex>

#include "grpc/health/v1/health.grpc.pb.h"

namespace ropewire::testing {

bool ServerProcess::Start(const std::vector<std::string>& args) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return false;
  std::vector<std::string> argv_strings = {
      std::string(ROPEWIRE_BINARY_DIR) + "/server/ropewire-server", "--host", "127.0.0.1", "--port",
      "0"};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    ::dup2(pipe_fds[1], STDERR_FILENO);
    ::close(pipe_fds[0]);
    std::vector<char*> argv;
    for (auto& a : argv_strings) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  reader_ = std::thread([this, fd = pipe_fds[0]] { ReadOutput(fd); });
  const std::regex listening("listening on 127\\.0\\.0\\.1:([0-9]+)");
  for (int i = 0; i < 3000 && port_ == 0; ++i) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      std::smatch match;
      if (std::regex_search(log_, match, listening)) port_ = std::stoi(match[1]);
    }
    int status = 0;
    if (port_ == 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) {
      Reap(status);  // it failed before listening: a startup error
      return false;
    }
    if (port_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (port_ == 0) return false;
  channel_ =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port_), grpc::InsecureChannelCredentials());
  return true;
}

void ServerProcess::ReadOutput(int fd) {
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof(buffer))) > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    log_.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
}

int ServerProcess::MetricsPort() const {
  const std::regex metrics("metrics on http://127\\.0\\.0\\.1:([0-9]+)");
  const std::string text = log();
  std::smatch match;
  return std::regex_search(text, match, metrics) ? std::stoi(match[1]) : 0;
}

bool ServerProcess::WaitForLog(const std::string& text, int timeout_ms) const {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    if (log().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return log().find(text) != std::string::npos;
}

void ServerProcess::Signal(int signal) {
  if (pid_ > 0) ::kill(pid_, signal);
}

std::string ServerProcess::log() const {
  std::lock_guard<std::mutex> lock(mu_);
  return log_;
}

bool ServerProcess::WaitServing(int timeout_ms) {
  auto stub = grpc::health::v1::Health::NewStub(channel_);
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    if (stub->Check(&context, request, &response).ok() &&
        response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

int ServerProcess::Reap(int status) {
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  pid_ = -1;
  if (reader_.joinable()) reader_.join();
  return exit_code_;
}

int ServerProcess::Stop(int signal, int timeout_ms) {
  if (pid_ <= 0) return exit_code_;
  // A drain waits for clients to close their connections (after its GOAWAY): drop this one, so
  // a test that holds no other ends without waiting for it.
  channel_.reset();
  ::kill(pid_, signal);
  int status = 0;
  int code = -1;
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      pid_ = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  if (reader_.joinable()) reader_.join();
  return code;
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) Stop(SIGKILL, 5000);
  if (reader_.joinable()) reader_.join();
}

bool WaitIdle(v1::Inference::Stub& stub, v1::ServerStats* last) {
  for (int i = 0; i < 1000; ++i) {
    grpc::ClientContext context;
    if (stub.GetServerStats(&context, v1::GetServerStatsRequest(), last).ok() &&
        last->running_requests() == 0 && last->waiting_requests() == 0 &&
        last->kv_cache_free_blocks() == last->kv_cache_blocks()) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace ropewire::testing
