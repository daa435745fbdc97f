#include "tls/testing/test_certificates.h"

#include <cstdio>
#include <memory>
#include <stdexcept>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace herald::tls::testing {

namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(FILE* p) const { std::fclose(p); }
};
template <typename T>
using Owned = std::unique_ptr<T, Free>;

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test certificates: ") + what);
}

Owned<EVP_PKEY> make_key() {
  Owned<EVP_PKEY> key(EVP_EC_gen("P-256"));
  check(key != nullptr, "EC key");
  return key;
}

void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  Owned<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  check(ext != nullptr && X509_add_ext(cert, ext.get(), -1) == 1, "extension");
}

Owned<X509> make_cert(EVP_PKEY* key, const std::string& common_name, X509* issuer,
                      EVP_PKEY* issuer_key, long serial) {
  Owned<X509> cert(X509_new());
  check(cert != nullptr, "X509_new");
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  if (issuer == nullptr) {
    add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    add_extension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    add_extension(cert.get(), signer, NID_subject_alt_name,
                  ("DNS:" + common_name + ",IP:127.0.0.1").c_str());
    add_extension(cert.get(), signer, NID_ext_key_usage, "serverAuth");
  }
  check(X509_sign(cert.get(), issuer_key, EVP_sha256()) > 0, "sign");
  return cert;
}

Owned<FILE> open_for_writing(const std::filesystem::path& path) {
  Owned<FILE> f(std::fopen(path.c_str(), "w"));
  check(f != nullptr, "cannot write a file");
  return f;
}

}  // namespace

TestCertificates make_test_certificates(const std::filesystem::path& dir,
                                        const std::string& server_name) {
  std::filesystem::create_directories(dir);
  const auto ca_key = make_key();
  const auto ca = make_cert(ca_key.get(), "Herald test CA", nullptr, ca_key.get(), 1);
  const auto key = make_key();
  const auto cert = make_cert(key.get(), server_name, ca.get(), ca_key.get(), 2);

  TestCertificates out{dir / "ca.pem", dir / "server.pem", dir / "server.key", server_name};
  check(PEM_write_X509(open_for_writing(out.ca_file).get(), ca.get()) == 1, "write CA");
  check(PEM_write_X509(open_for_writing(out.cert_file).get(), cert.get()) == 1, "write cert");
  check(PEM_write_PrivateKey(open_for_writing(out.key_file).get(), key.get(), nullptr, nullptr, 0,
                             nullptr, nullptr) == 1,
        "write key");
  return out;
}

}  // namespace herald::tls::testing
