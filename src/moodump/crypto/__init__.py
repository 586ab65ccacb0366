"""Encryption of backups to public keys, in the age format (through pyrage).

Three layers, each usable on its own (docs/encryption.md has the format and the
integration points):

- :mod:`.keys`: :func:`parse_recipients` (``MOODUMP_ENCRYPT_RECIPIENTS``) and
  :func:`load_identities` (``--identity`` / ``MOODUMP_IDENTITY_FILE``);
- :mod:`.streams`: streaming age with bounded memory: :func:`open_decrypting` (a
  readable plaintext file over a ciphertext stream), :func:`open_encrypting` (a
  writable file), :func:`open_encrypting_reader`; :mod:`.files`: :func:`encrypt_file`,
  :func:`decrypt_file`; :mod:`.hashing`: :class:`HashingReader`, which checks a sha256
  at the end of a stream;
- :mod:`.backup`: the encrypted backup directory (``encrypted.json`` outside,
  ``manifest.json.age`` and ``X.age`` for every file ``X``): :func:`encrypt_backup_dir`,
  :func:`decrypt_backup_dir`, :func:`verify_ciphertext`, :func:`check_identities`,
  :func:`open_backup_file`;
- :mod:`.signing`: Ed25519 signatures of the manifest (``manifest.sig``):
  :func:`write_signature`, :func:`check_signature`, the key loaders.
"""

from moodump.crypto.backup import (
    ENCRYPTED_MANIFEST_NAME,
    INNER_MANIFEST_NAME,
    SUFFIX,
    CiphertextReport,
    EncryptedFile,
    EncryptedManifest,
    check_identities,
    decrypt_backup_dir,
    decrypt_manifest,
    encrypt_backup_dir,
    is_encrypted_backup,
    open_backup_file,
    read_encrypted_manifest,
    verify_ciphertext,
)
from moodump.crypto.files import Digests, decrypt_file, encrypt_file
from moodump.crypto.hashing import HashingReader, HashingWriter
from moodump.crypto.keys import (
    ENV_IDENTITY_FILE,
    ENV_RECIPIENTS,
    Identity,
    Recipient,
    load_identities,
    parse_recipients,
)
from moodump.crypto.signing import (
    SIGNATURE_NAME,
    SigningKey,
    VerifyKey,
    check_signature,
    load_signing_key,
    load_verify_keys,
    parse_verify_keys,
    sign_manifest,
    signing_key_from_setting,
    write_signature,
)
from moodump.crypto.streams import (
    EncryptingWriter,
    open_decrypting,
    open_encrypting,
    open_encrypting_reader,
)

__all__ = [
    "ENCRYPTED_MANIFEST_NAME",
    "ENV_IDENTITY_FILE",
    "ENV_RECIPIENTS",
    "INNER_MANIFEST_NAME",
    "SIGNATURE_NAME",
    "SUFFIX",
    "CiphertextReport",
    "Digests",
    "EncryptedFile",
    "EncryptedManifest",
    "EncryptingWriter",
    "HashingReader",
    "HashingWriter",
    "Identity",
    "Recipient",
    "SigningKey",
    "VerifyKey",
    "check_identities",
    "check_signature",
    "decrypt_backup_dir",
    "decrypt_file",
    "decrypt_manifest",
    "encrypt_backup_dir",
    "encrypt_file",
    "is_encrypted_backup",
    "load_identities",
    "load_signing_key",
    "load_verify_keys",
    "open_backup_file",
    "open_decrypting",
    "open_encrypting",
    "open_encrypting_reader",
    "parse_recipients",
    "parse_verify_keys",
    "read_encrypted_manifest",
    "sign_manifest",
    "signing_key_from_setting",
    "verify_ciphertext",
    "write_signature",
]
