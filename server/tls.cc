#include "server/tls.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <sstream>

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace ropewire::server {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, " ", path, ": cannot read"));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

BioPtr MemoryBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

absl::StatusOr<std::unique_ptr<X509, X509Deleter>> FirstCertificate(const std::string& flag,
                                                                    const std::string& path) {
  auto pem = ReadPem(flag, path);
  if (!pem.ok()) return pem.status();
  BioPtr bio = MemoryBio(*pem);
  std::unique_ptr<X509, X509Deleter> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " ", path, ": holds no PEM certificate (BEGIN CERTIFICATE)"));
  }
  return cert;
}

// The startup checks gRPC would otherwise leave to the first handshake.
absl::Status CheckFiles(const TlsOptions& o) {
  if (o.cert_file.empty() || o.key_file.empty())
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  auto cert = FirstCertificate("--tls-cert", o.cert_file);
  if (!cert.ok()) return cert.status();
  auto key_pem = ReadPem("--tls-key", o.key_file);
  if (!key_pem.ok()) return key_pem.status();
  BioPtr bio = MemoryBio(*key_pem);
  std::unique_ptr<EVP_PKEY, KeyDeleter> key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--tls-key ", o.key_file, ": holds no unencrypted PEM private key (BEGIN PRIVATE KEY)"));
  }
  if (X509_check_private_key(cert->get(), key.get()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("--tls-key ", o.key_file,
                                                   " does not belong to the certificate in "
                                                   "--tls-cert ",
                                                   o.cert_file));
  }
  if (X509_cmp_current_time(X509_get0_notAfter(cert->get())) < 0) {
    spdlog::warn("--tls-cert {}: the certificate has expired; clients will refuse it", o.cert_file);
  }
  if (!o.client_ca_file.empty()) {
    auto ca = FirstCertificate("--tls-client-ca", o.client_ca_file);
    if (!ca.ok()) return ca.status();
  }
  if (o.reload_seconds < 1) return absl::InvalidArgumentError("--tls-reload-seconds must be >= 1");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsOptions& options) {
  if (!options.enabled()) {
    if (!options.client_ca_file.empty()) {
      return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
    }
    return grpc::InsecureServerCredentials();
  }
  if (absl::Status checked = CheckFiles(options); !checked.ok()) return checked;
  // The provider reads the files now and again every reload_seconds.
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      options.key_file, options.cert_file, options.client_ca_file,
      static_cast<unsigned int>(options.reload_seconds));
  grpc::experimental::TlsServerCredentialsOptions tls(provider);
  tls.watch_identity_key_cert_pairs();
  if (!options.client_ca_file.empty()) {
    tls.watch_root_certs();
    tls.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    tls.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(tls);
}

}  // namespace ropewire::server
