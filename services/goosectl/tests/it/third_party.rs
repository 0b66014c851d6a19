//! Our offline proofs, checked by someone else's C2SP implementation (Cloudflare's
//! `signed_note` and `tlog_tiles`, ports of Go's sumdb/note and sumdb/tlog).

use crate::support::{fill, sqlite_ledger};
use goose_ledger::LedgerReader;
use sha3::Digest as _;
use signed_note::{Note, StandardVerifier, VerifierList};
use tlog_tiles::{check_record, record_hash, Checkpoint, Hash};

#[tokio::test]
async fn a_third_party_verifier_accepts_our_proof_files() {
    let dir = tempfile::tempdir().unwrap();
    let k = sqlite_ledger(&dir.path().join("l.db")).await;
    let ids = fill(&k.ledger, 23).await;
    k.ledger.sign_checkpoint(&k.log_key).await.unwrap();
    let reader: &LedgerReader = &k.ledger;

    for id in [ids[0], ids[7], ids[22]] {
        let event = reader.find_event(id).await.unwrap();
        let (proof, _) = goosectl::chain_api::offline_proof(reader, &event)
            .await
            .unwrap();
        let text = proof.to_text();

        // Parse the tlog-proof file by its spec, independently of our parser.
        let (head, note_text) = text.split_once("\n\n").unwrap();
        let mut lines = head.lines();
        assert_eq!(lines.next(), Some("c2sp.org/tlog-proof@v1"));
        let extra = lines.next().unwrap().strip_prefix("extra ").unwrap();
        let index: u64 = lines
            .next()
            .unwrap()
            .strip_prefix("index ")
            .unwrap()
            .parse()
            .unwrap();
        let path: Vec<Hash> = lines.map(|l| Hash::parse_hash(l).unwrap()).collect();

        // The checkpoint note, verified with our vkey string by their note verifier.
        let verifier = StandardVerifier::new(&k.log_key.vkey()).unwrap();
        let note = Note::from_bytes(note_text.as_bytes()).unwrap();
        note.verify(&VerifierList::new(vec![Box::new(verifier)]))
            .unwrap();
        let checkpoint = Checkpoint::from_bytes(note.text()).unwrap();
        assert_eq!(checkpoint.origin(), "goose.test/ledger");

        // The leaf: the record's SHA3-256 digest, hashed as an RFC 6962 leaf.
        use base64::Engine as _;
        let record = base64::engine::general_purpose::STANDARD
            .decode(extra)
            .unwrap();
        let leaf = record_hash(&sha3::Sha3_256::digest(&record));
        check_record(&path, checkpoint.size(), *checkpoint.hash(), index, leaf).unwrap();

        // And it rejects a proof for the wrong index.
        assert!(check_record(
            &path,
            checkpoint.size(),
            *checkpoint.hash(),
            (index + 1) % 23,
            leaf
        )
        .is_err());
    }
}
