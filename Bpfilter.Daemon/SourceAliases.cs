// The typed ruleset tree lives in Nft.Bytecode; these names are used beside the backend IR's
// Rule/Chain/Set, so they come in as aliases rather than through the whole namespace.
global using SourceTable = Nft.Bytecode.Objects.SourceTable;
global using SourceChain = Nft.Bytecode.Objects.SourceChain;
global using SourceSet = Nft.Bytecode.Objects.SourceSet;
