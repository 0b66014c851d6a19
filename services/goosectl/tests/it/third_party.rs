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
        let log_vkey = goose_ledger::Vkey::parse(&k.log_key.vkey()).unwrap();
        let (proof, _) = goosectl::chain_api::offline_proof(reader, &log_vkey, &event)
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

        // The extra data, read by docs/chain-format.md alone: "GGPROOF" 0x02 bytes(record)
        // str(seal note) u32(n) n * 32-byte path.
        use base64::Engine as _;
        let extra = base64::engine::general_purpose::STANDARD
            .decode(extra)
            .unwrap();
        assert_eq!(&extra[..8], b"GGPROOF\x02");
        let mut at = 8;
        let field = |at: &mut usize| {
            let n = u32::from_be_bytes(extra[*at..*at + 4].try_into().unwrap()) as usize;
            *at += 4 + n;
            extra[*at - n..*at].to_vec()
        };
        let record = field(&mut at);
        let seal = String::from_utf8(field(&mut at)).unwrap();
        let n = u32::from_be_bytes(extra[at..at + 4].try_into().unwrap()) as usize;
        let seal_path: Vec<Hash> = (0..n)
            .map(|i| Hash(extra[at + 4 + 32 * i..at + 36 + 32 * i].try_into().unwrap()))
            .collect();
        assert_eq!(at + 4 + 32 * n, extra.len());

        // The leaf: the record's SHA3-256 digest, hashed as an RFC 6962 leaf.
        let leaf = record_hash(&sha3::Sha3_256::digest(&record));
        check_record(&path, checkpoint.size(), *checkpoint.hash(), index, leaf).unwrap();

        // Who wrote it: the commit seal is a signed note by the service's key whose body is a
        // checkpoint (with one extension line) of the tree after the commit; the event is in it.
        let service = StandardVerifier::new(&k.ledger.key().vkey()).unwrap();
        let seal_note = Note::from_bytes(seal.as_bytes()).unwrap();
        seal_note
            .verify(&VerifierList::new(vec![Box::new(service)]))
            .unwrap();
        let sealed = Checkpoint::from_bytes(seal_note.text()).unwrap();
        assert_eq!(sealed.origin(), "goose.test/ledger");
        assert!(sealed
            .extension()
            .starts_with("golden-goose/seal/v2 first "));
        check_record(&seal_path, sealed.size(), *sealed.hash(), index, leaf).unwrap();

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
