// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.19;

/// @title EpochSettlement
/// @notice Settles epoch proofs: each accepted proof moves the chains it covers from the state
///         settled at the previous epoch to a new one, and the global exit root with it.
/// @dev Generated from a template: the value of `CHAINS` below is substituted (the number of
///      chains an epoch proof covers) before this file is compiled. The file holds this one
///      contract only, so that a compiler printing one bytecode per contract prints this one last.
///
///      The proof verifier is a separate, generated contract with no ABI. It is called with the
///      public inputs as 32-byte big-endian words followed by the proof bytes; it reverts when the
///      proof is invalid and returns (possibly with no data) when it is valid. `settle` takes
///      exactly that calldata, so the values checked here are the very words the verifier checks.
///
///      Public input words, for n = CHAINS chains in strictly increasing chain id:
///        0..11       KZG accumulator limbs (only the verifier uses them)
///        12          epoch number
///        13          previous global exit root
///        14          new global exit root
///        15 + 6j     chain j: chain id
///        15 + 6j + 1 chain j: old state root
///        15 + 6j + 2 chain j: new state root
///        15 + 6j + 3 chain j: new local exit root
///        15 + 6j + 4 chain j: old bridge balance
///        15 + 6j + 5 chain j: new bridge balance
///
///      Why the checks: a valid proof only attests that *some* transition between the values it
///      exposes is correct; it says nothing about which epoch is current or which roots were
///      settled before. This contract binds the proof's "old" values (epoch, global exit root,
///      each chain's state root and bridge balance) to what it has settled, and only then adopts
///      the proof's "new" values. Without those checks a valid proof for an old epoch could be
///      replayed, or a proof starting from a forged state could overwrite the settled one.
contract EpochSettlement {
    /// @notice Number of chains every epoch proof covers (substituted into the template).
    uint256 internal constant CHAINS = {{CHAINS}};

    /// @dev Public input words before the first chain: 12 accumulator limbs, the epoch, the
    ///      previous and the new global exit root.
    uint256 private constant HEADER_WORDS = 15;
    /// @dev Public input words per chain: id, old and new state root, new exit root, old and new
    ///      bridge balance.
    uint256 private constant CHAIN_WORDS = 6;
    /// @dev Word index of the epoch number.
    uint256 private constant EPOCH_WORD = 12;
    /// @dev Word index of the global exit root the epoch starts from.
    uint256 private constant PREVIOUS_GER_WORD = 13;
    /// @dev Word index of the global exit root the epoch ends with.
    uint256 private constant NEW_GER_WORD = 14;
    /// @dev Length in bytes of the public inputs; the proof bytes follow them.
    uint256 private constant PUBLIC_INPUT_BYTES = (HEADER_WORDS + CHAIN_WORDS * CHAINS) * 32;

    /// @notice State settled for one chain.
    /// @param stateRoot state root at the last settled epoch
    /// @param exitRoot local exit root at the last settled epoch
    /// @param balance bridge balance at the last settled epoch
    struct ChainState {
        uint256 stateRoot;
        uint256 exitRoot;
        uint256 balance;
    }

    /// @notice Last settled epoch; 0 is the genesis given to the constructor.
    uint256 public epoch;
    /// @notice Global exit root at the last settled epoch.
    uint256 public globalExitRoot;
    /// @notice The proof verifier; fixed at deployment, so that the circuit a proof must satisfy
    ///         cannot be swapped afterwards.
    address public immutable verifier;

    /// @dev Bit `id` is set when chain `id` is registered. Chain ids are below 256, so one word
    ///      (one storage read per settlement) answers the registration of every chain.
    uint256 private _registered;
    /// @dev Settled state per chain id, in a fixed array: ids are below 256, and indexing the
    ///      array needs no hashing, unlike a mapping.
    ChainState[256] private _chains;

    /// @notice An epoch was settled.
    /// @param epoch the epoch now settled
    /// @param globalExitRoot the global exit root it ends with
    event EpochSettled(uint256 indexed epoch, uint256 globalExitRoot);

    /// @notice A chain's state was settled; emitted once per chain for every epoch.
    /// @param epoch the epoch now settled
    /// @param chainId the chain
    /// @param stateRoot its new state root
    /// @param exitRoot its new local exit root
    /// @param balance its new bridge balance
    event ChainSettled(
        uint256 indexed epoch, uint256 indexed chainId, uint256 stateRoot, uint256 exitRoot, uint256 balance
    );

    /// @notice The verifier address holds no code. A call to an address without code succeeds,
    ///         so such a "verifier" would accept every proof.
    error VerifierHasNoCode(address verifier);
    /// @notice The genesis arrays differ in length.
    error GenesisLengthMismatch();
    /// @notice The genesis registers fewer chains than the CHAINS distinct chains every proof
    ///         covers, so no proof could ever settle.
    /// @param minimum CHAINS
    /// @param got the number of chains in the genesis
    error TooFewChains(uint256 minimum, uint256 got);
    /// @notice A chain id is 256 or more; ids index a 256-bit registration bitmap.
    error ChainIdTooLarge(uint256 chainId);
    /// @notice A chain id appears twice in the genesis.
    error DuplicateChain(uint256 chainId);
    /// @notice The calldata is shorter than the public inputs of a CHAINS-chain epoch proof.
    /// @param minimum bytes of public inputs expected
    /// @param got bytes given
    error ProofTooShort(uint256 minimum, uint256 got);
    /// @notice The proof is not for the epoch after the last settled one (a replay, or a skip).
    /// @param expected the next epoch
    /// @param got the epoch the proof is for
    error StaleEpoch(uint256 expected, uint256 got);
    /// @notice The proof starts from another global exit root than the settled one.
    error WrongGlobalExitRoot(uint256 expected, uint256 got);
    /// @notice The chain id is not registered.
    error UnknownChain(uint256 chainId);
    /// @notice The proof's chains are not in strictly increasing id order. Enforced so that no
    ///         chain can appear twice in one proof (twice with the same settled start state, and
    ///         two different end states).
    /// @param chainId the chain id found out of order
    error ChainOutOfOrder(uint256 chainId);
    /// @notice The proof starts a chain from another state root than the settled one.
    error WrongStateRoot(uint256 chainId, uint256 expected, uint256 got);
    /// @notice The proof starts a chain from another bridge balance than the settled one.
    error WrongBalance(uint256 chainId, uint256 expected, uint256 got);
    /// @notice The verifier rejected the proof.
    error InvalidProof();

    /// @notice Deploys the settlement at epoch 0 with a trusted genesis given by the deployer.
    /// @dev The arrays are indexed alike: chain `chainIds[i]` starts with `stateRoots[i]`,
    ///      `exitRoots[i]` and `balances[i]`. Every proof covers CHAINS distinct registered
    ///      chains, so the genesis must register at least CHAINS (a deployment that could never
    ///      settle fails now rather than at the first settlement). It may register more: an epoch
    ///      then settles CHAINS of them, and the others keep their settled state (their local exit
    ///      roots stay committed to by the global exit root, which the proof carries forward).
    /// @param verifier_ the proof verifier contract
    /// @param globalExitRoot_ the global exit root at genesis
    /// @param chainIds the chains, each below 256, distinct
    /// @param stateRoots their state roots at genesis
    /// @param exitRoots their local exit roots at genesis
    /// @param balances their bridge balances at genesis
    constructor(
        address verifier_,
        uint256 globalExitRoot_,
        uint256[] memory chainIds,
        uint256[] memory stateRoots,
        uint256[] memory exitRoots,
        uint256[] memory balances
    ) {
        if (verifier_.code.length == 0) revert VerifierHasNoCode(verifier_);
        uint256 count = chainIds.length;
        if (stateRoots.length != count || exitRoots.length != count || balances.length != count) {
            revert GenesisLengthMismatch();
        }
        if (count < CHAINS) revert TooFewChains(CHAINS, count);
        uint256 registeredBits;
        for (uint256 i = 0; i < count; ++i) {
            uint256 id = chainIds[i];
            if (id >= 256) revert ChainIdTooLarge(id);
            if ((registeredBits >> id) & 1 != 0) revert DuplicateChain(id);
            registeredBits |= 1 << id;
            _chains[id] = ChainState(stateRoots[i], exitRoots[i], balances[i]);
        }
        _registered = registeredBits;
        verifier = verifier_;
        globalExitRoot = globalExitRoot_;
    }

    /// @notice Settles the next epoch with an epoch proof.
    /// @dev All bindings are checked before the verifier runs, so a stale or mismatched proof
    ///      reverts cheaply, without paying for the pairing check. The verifier is called with
    ///      `staticcall`: it cannot change state or reenter to settle.
    /// @param proof the verifier's calldata: the 15 + 6 * CHAINS public input words, then the
    ///        proof bytes
    function settle(bytes calldata proof) external {
        if (proof.length < PUBLIC_INPUT_BYTES) revert ProofTooShort(PUBLIC_INPUT_BYTES, proof.length);

        // The proof must continue exactly from the settled epoch: a replayed (or earlier) proof
        // carries an epoch already settled, so it reverts here.
        uint256 next = epoch + 1;
        uint256 got = _word(proof, EPOCH_WORD);
        if (got != next) revert StaleEpoch(next, got);

        // ...and from the settled global exit root.
        got = _word(proof, PREVIOUS_GER_WORD);
        if (got != globalExitRoot) revert WrongGlobalExitRoot(globalExitRoot, got);

        // Each chain must be registered, appear once, and start from its settled state root and
        // bridge balance (the exit root is not an input of the transition, only an output).
        uint256 registeredBits = _registered;
        uint256 minimumId = 0;
        for (uint256 j = 0; j < CHAINS; ++j) {
            uint256 base = HEADER_WORDS + CHAIN_WORDS * j;
            uint256 id = _word(proof, base);
            if (id >= 256 || (registeredBits >> id) & 1 == 0) revert UnknownChain(id);
            if (id < minimumId) revert ChainOutOfOrder(id);
            minimumId = id + 1;
            ChainState storage settled = _chains[id];
            got = _word(proof, base + 1);
            if (got != settled.stateRoot) revert WrongStateRoot(id, settled.stateRoot, got);
            got = _word(proof, base + 4);
            if (got != settled.balance) revert WrongBalance(id, settled.balance, got);
        }

        // Only now pay for the proof: the verifier reverts on an invalid one.
        address verifier_ = verifier;
        if (verifier_.code.length == 0) revert VerifierHasNoCode(verifier_);
        bool ok;
        assembly {
            let input := mload(0x40)
            calldatacopy(input, proof.offset, proof.length)
            ok := staticcall(gas(), verifier_, input, proof.length, 0, 0)
        }
        if (!ok) revert InvalidProof();

        // Adopt the proof's new values.
        epoch = next;
        uint256 newGlobalExitRoot = _word(proof, NEW_GER_WORD);
        globalExitRoot = newGlobalExitRoot;
        emit EpochSettled(next, newGlobalExitRoot);
        for (uint256 j = 0; j < CHAINS; ++j) {
            _adoptChain(proof, HEADER_WORDS + CHAIN_WORDS * j, next);
        }
    }

    /// @dev Stores the new state root, exit root and bridge balance of the chain whose words
    ///      start at `base` in `proof`, and emits its ChainSettled. (A function of its own to keep
    ///      `settle` within the EVM stack without via-IR.)
    /// @param proof the verifier calldata, already checked and verified
    /// @param base the word index of the chain's id
    /// @param settledEpoch the epoch being settled
    function _adoptChain(bytes calldata proof, uint256 base, uint256 settledEpoch) private {
        uint256 id = _word(proof, base);
        uint256 stateRoot = _word(proof, base + 2);
        uint256 exitRoot = _word(proof, base + 3);
        uint256 balance = _word(proof, base + 5);
        ChainState storage settled = _chains[id];
        settled.stateRoot = stateRoot;
        settled.exitRoot = exitRoot;
        settled.balance = balance;
        emit ChainSettled(settledEpoch, id, stateRoot, exitRoot, balance);
    }

    /// @notice The settled state of a chain.
    /// @param id the chain id
    /// @return stateRoot its state root at the last settled epoch
    /// @return exitRoot its local exit root at the last settled epoch
    /// @return balance its bridge balance at the last settled epoch
    function chain(uint256 id) external view returns (uint256 stateRoot, uint256 exitRoot, uint256 balance) {
        if (!registered(id)) revert UnknownChain(id);
        ChainState storage settled = _chains[id];
        return (settled.stateRoot, settled.exitRoot, settled.balance);
    }

    /// @notice Whether chain `id` is registered (an epoch proof may settle it).
    /// @param id the chain id
    /// @return true when registered at genesis
    function registered(uint256 id) public view returns (bool) {
        return id < 256 && (_registered >> id) & 1 != 0;
    }

    /// @dev Public input word `index` of the verifier calldata `proof`; bounds are checked once by
    ///      the length check in `settle` (every index used is below 15 + 6 * CHAINS).
    /// @param proof the verifier calldata
    /// @param index the word index
    /// @return word the word, as a big-endian integer
    function _word(bytes calldata proof, uint256 index) private pure returns (uint256 word) {
        assembly {
            word := calldataload(add(proof.offset, shl(5, index)))
        }
    }
}
