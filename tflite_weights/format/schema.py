"""The TFLite schema as data: tables with their field slots, unions and enums.

Transcribed from the newest schema, ``tflite/converter/schema/schema.fbs`` in
google-ai-edge/LiteRT (schema version 3d: INT2, UINT4, FLOAT8, blockwise and
multi-axis quantization, external buffers, STABLEHLO_CASE), plus two fields
that the generated code of the ai-edge-litert 2.3.0 wheel already has
(``BlockwiseQuantization.block_shape``, ``FullyConnectedOptions.quant_spec``).
The conversion-metadata schema (``conversion_metadata.fbs``) follows.

One line per table: ``Name: field:type ...``.  Types: ``bool i8 u8 i16 u16
i32 u32 i64 u64 f32 f64``, ``str``, a table name, a union name, or a vector
``[type]``.  ``=value`` gives a default, ``@Enum`` names the enum of a scalar.
A field's slot is its position in the declaration; a union takes two slots
(its type byte, then its value), as flatbuffers lays it out.  The tests check
every slot and enum value against the schema's generated Python bindings.

Nothing here reads bytes; the domain layer asks for slots by name once, at
import, and keeps the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "FILE_IDENTIFIER",
    "SCHEMA_VERSION",
    "TABLES",
    "UNIONS",
    "ENUMS",
    "TENSOR_TYPES",
    "BUILTIN_OPERATORS",
    "slots",
    "enum_name",
    "enum_value",
    "union_code",
    "union_member",
    "parse_tables",
]

#: bytes 4-7 of every .tflite file (``file_identifier "TFL3"`` in the schema)
FILE_IDENTIFIER = b"TFL3"
#: the only ``Model.version`` the runtime accepts (``TFLITE_SCHEMA_VERSION``)
SCHEMA_VERSION = 3

# -- enums -------------------------------------------------------------------

TENSOR_TYPES = (
    "FLOAT32 FLOAT16 INT32 UINT8 INT64 STRING BOOL INT16 COMPLEX64 INT8 FLOAT64 "
    "COMPLEX128 UINT64 RESOURCE VARIANT UINT32 UINT16 INT4 BFLOAT16 INT2 UINT4 "
    "FLOAT8_E4M3FN FLOAT8_E5M2"
).split()

BUILTIN_OPERATORS = """
ADD AVERAGE_POOL_2D CONCATENATION CONV_2D DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE
EMBEDDING_LOOKUP FLOOR FULLY_CONNECTED HASHTABLE_LOOKUP L2_NORMALIZATION L2_POOL_2D
LOCAL_RESPONSE_NORMALIZATION LOGISTIC LSH_PROJECTION LSTM MAX_POOL_2D MUL RELU RELU_N1_TO_1
RELU6 RESHAPE RESIZE_BILINEAR RNN SOFTMAX SPACE_TO_DEPTH SVDF TANH CONCAT_EMBEDDINGS
SKIP_GRAM CALL CUSTOM EMBEDDING_LOOKUP_SPARSE PAD UNIDIRECTIONAL_SEQUENCE_RNN GATHER
BATCH_TO_SPACE_ND SPACE_TO_BATCH_ND TRANSPOSE MEAN SUB DIV SQUEEZE
UNIDIRECTIONAL_SEQUENCE_LSTM STRIDED_SLICE BIDIRECTIONAL_SEQUENCE_RNN EXP TOPK_V2 SPLIT
LOG_SOFTMAX DELEGATE BIDIRECTIONAL_SEQUENCE_LSTM CAST PRELU MAXIMUM ARG_MAX MINIMUM LESS
NEG PADV2 GREATER GREATER_EQUAL LESS_EQUAL SELECT SLICE SIN TRANSPOSE_CONV SPARSE_TO_DENSE
TILE EXPAND_DIMS EQUAL NOT_EQUAL LOG SUM SQRT RSQRT SHAPE POW ARG_MIN FAKE_QUANT
REDUCE_PROD REDUCE_MAX PACK LOGICAL_OR ONE_HOT LOGICAL_AND LOGICAL_NOT UNPACK REDUCE_MIN
FLOOR_DIV REDUCE_ANY SQUARE ZEROS_LIKE FILL FLOOR_MOD RANGE RESIZE_NEAREST_NEIGHBOR
LEAKY_RELU SQUARED_DIFFERENCE MIRROR_PAD ABS SPLIT_V UNIQUE CEIL REVERSE_V2 ADD_N
GATHER_ND COS WHERE RANK ELU REVERSE_SEQUENCE MATRIX_DIAG QUANTIZE MATRIX_SET_DIAG ROUND
HARD_SWISH IF WHILE NON_MAX_SUPPRESSION_V4 NON_MAX_SUPPRESSION_V5 SCATTER_ND SELECT_V2
DENSIFY SEGMENT_SUM BATCH_MATMUL PLACEHOLDER_FOR_GREATER_OP_CODES CUMSUM CALL_ONCE
BROADCAST_TO RFFT2D CONV_3D IMAG REAL COMPLEX_ABS HASHTABLE HASHTABLE_FIND
HASHTABLE_IMPORT HASHTABLE_SIZE REDUCE_ALL CONV_3D_TRANSPOSE VAR_HANDLE READ_VARIABLE
ASSIGN_VARIABLE BROADCAST_ARGS RANDOM_STANDARD_NORMAL BUCKETIZE RANDOM_UNIFORM MULTINOMIAL
GELU DYNAMIC_UPDATE_SLICE RELU_0_TO_1 UNSORTED_SEGMENT_PROD UNSORTED_SEGMENT_MAX
UNSORTED_SEGMENT_SUM ATAN2 UNSORTED_SEGMENT_MIN SIGN BITCAST BITWISE_XOR RIGHT_SHIFT
STABLEHLO_LOGISTIC STABLEHLO_ADD STABLEHLO_DIVIDE STABLEHLO_MULTIPLY STABLEHLO_MAXIMUM
STABLEHLO_RESHAPE STABLEHLO_CLAMP STABLEHLO_CONCATENATE STABLEHLO_BROADCAST_IN_DIM
STABLEHLO_CONVOLUTION STABLEHLO_SLICE STABLEHLO_CUSTOM_CALL STABLEHLO_REDUCE STABLEHLO_ABS
STABLEHLO_AND STABLEHLO_COSINE STABLEHLO_EXPONENTIAL STABLEHLO_FLOOR STABLEHLO_LOG
STABLEHLO_MINIMUM STABLEHLO_NEGATE STABLEHLO_OR STABLEHLO_POWER STABLEHLO_REMAINDER
STABLEHLO_RSQRT STABLEHLO_SELECT STABLEHLO_SUBTRACT STABLEHLO_TANH STABLEHLO_SCATTER
STABLEHLO_COMPARE STABLEHLO_CONVERT STABLEHLO_DYNAMIC_SLICE STABLEHLO_DYNAMIC_UPDATE_SLICE
STABLEHLO_PAD STABLEHLO_IOTA STABLEHLO_DOT_GENERAL STABLEHLO_REDUCE_WINDOW STABLEHLO_SORT
STABLEHLO_WHILE STABLEHLO_GATHER STABLEHLO_TRANSPOSE DILATE STABLEHLO_RNG_BIT_GENERATOR
REDUCE_WINDOW STABLEHLO_COMPOSITE STABLEHLO_SHIFT_LEFT STABLEHLO_CBRT STABLEHLO_CASE
""".split()

ENUMS: dict[str, dict[int, str]] = {
    "TensorType": dict(enumerate(TENSOR_TYPES)),
    "BuiltinOperator": dict(enumerate(BUILTIN_OPERATORS)),
    "DimensionType": {0: "DENSE", 1: "SPARSE_CSR"},
    "Padding": {0: "SAME", 1: "VALID"},
    "ActivationFunctionType": {
        0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"},
    "LSHProjectionType": {0: "UNKNOWN", 1: "SPARSE", 2: "DENSE"},
    "FullyConnectedOptionsWeightsFormat": {0: "DEFAULT", 1: "SHUFFLED4x16INT8"},
    "LSTMKernelType": {0: "FULL", 1: "BASIC"},
    "CombinerType": {0: "SUM", 1: "MEAN", 2: "SQRTN"},
    "MirrorPadMode": {0: "REFLECT", 1: "SYMMETRIC"},
    "CustomOptionsFormat": {0: "FLEXBUFFERS"},
    "StablehloPrecisionConfig": {0: "DEFAULT", 1: "HIGH", 2: "HIGHEST"},
    "StablehloComparisonDirection": dict(enumerate(
        "STABLEHLO_COMPARISON_DIRECTION_" + s for s in "EQ NE GE GT LE LT".split())),
    "StablehloComparisonType": dict(enumerate(
        "STABLEHLO_COMPARISON_TYPE_" + s
        for s in "NOTYPE FLOAT FLOAT_TOTAL_ORDER SIGNED UNSIGNED".split())),
    "RngAlgorithm": {0: "DEFAULT", 1: "PHILOX", 2: "THREEFRY"},
    "ReduceWindowFunction": dict(enumerate(
        "UNSUPPORTED ADD MUL MINIMUM MAXIMUM ALL ANY".split())),
    # conversion_metadata.fbs
    "ModelType": {0: "NONE", 1: "TF_SAVED_MODEL", 2: "KERAS_MODEL", 3: "TF_CONCRETE_FUNCTIONS",
                  4: "TF_GRAPH_DEF", 5: "TF_SESSION", 6: "JAX", 7: "PYTORCH"},
    "ModelOptimizationMode": {
        1001: "PTQ_FLOAT16", 1002: "PTQ_DYNAMIC_RANGE", 1003: "PTQ_FULL_INTEGER",
        1004: "PTQ_INT16", 2000: "QUANTIZATION_AWARE_TRAINING",
        3001: "RANDOM_SPARSITY", 3002: "BLOCK_SPARSITY", 3003: "STRUCTURED_SPARSITY"},
}

# -- unions: member tables in type-code order (code 0 is NONE) ----------------

UNIONS: dict[str, tuple[str, ...]] = {
    "QuantizationDetails": (
        "CustomQuantization", "BlockwiseQuantization", "MultiAxisQuantization"),
    "SparseIndexVector": ("Int32Vector", "Uint16Vector", "Uint8Vector"),
    "BuiltinOptions": tuple("""
Conv2DOptions DepthwiseConv2DOptions ConcatEmbeddingsOptions LSHProjectionOptions
Pool2DOptions SVDFOptions RNNOptions FullyConnectedOptions SoftmaxOptions
ConcatenationOptions AddOptions L2NormOptions LocalResponseNormalizationOptions LSTMOptions
ResizeBilinearOptions CallOptions ReshapeOptions SkipGramOptions SpaceToDepthOptions
EmbeddingLookupSparseOptions MulOptions PadOptions GatherOptions BatchToSpaceNDOptions
SpaceToBatchNDOptions TransposeOptions ReducerOptions SubOptions DivOptions SqueezeOptions
SequenceRNNOptions StridedSliceOptions ExpOptions TopKV2Options SplitOptions
LogSoftmaxOptions CastOptions DequantizeOptions MaximumMinimumOptions ArgMaxOptions
LessOptions NegOptions PadV2Options GreaterOptions GreaterEqualOptions LessEqualOptions
SelectOptions SliceOptions TransposeConvOptions SparseToDenseOptions TileOptions
ExpandDimsOptions EqualOptions NotEqualOptions ShapeOptions PowOptions ArgMinOptions
FakeQuantOptions PackOptions LogicalOrOptions OneHotOptions LogicalAndOptions
LogicalNotOptions UnpackOptions FloorDivOptions SquareOptions ZerosLikeOptions FillOptions
BidirectionalSequenceLSTMOptions BidirectionalSequenceRNNOptions
UnidirectionalSequenceLSTMOptions FloorModOptions RangeOptions ResizeNearestNeighborOptions
LeakyReluOptions SquaredDifferenceOptions MirrorPadOptions AbsOptions SplitVOptions
UniqueOptions ReverseV2Options AddNOptions GatherNdOptions CosOptions WhereOptions
RankOptions ReverseSequenceOptions MatrixDiagOptions QuantizeOptions MatrixSetDiagOptions
HardSwishOptions IfOptions WhileOptions DepthToSpaceOptions NonMaxSuppressionV4Options
NonMaxSuppressionV5Options ScatterNdOptions SelectV2Options DensifyOptions
SegmentSumOptions BatchMatMulOptions CumsumOptions CallOnceOptions BroadcastToOptions
Rfft2dOptions Conv3DOptions HashtableOptions HashtableFindOptions HashtableImportOptions
HashtableSizeOptions VarHandleOptions ReadVariableOptions AssignVariableOptions
RandomOptions BucketizeOptions GeluOptions DynamicUpdateSliceOptions
UnsortedSegmentProdOptions UnsortedSegmentMaxOptions UnsortedSegmentMinOptions
UnsortedSegmentSumOptions ATan2Options SignOptions BitcastOptions BitwiseXorOptions
RightShiftOptions
""".split()),
    "BuiltinOptions2": tuple("""
StablehloConcatenateOptions StablehloBroadcastInDimOptions StablehloSliceOptions
StablehloConvolutionOptions StablehloCustomCallOptions StablehloReduceOptions
StablehloScatterOptions StablehloCompareOptions StablehloDynamicSliceOptions
StablehloPadOptions StablehloIotaOptions StablehloDotGeneralOptions
StablehloReduceWindowOptions StablehloSortOptions StablehloWhileOptions
StablehloGatherOptions StablehloTransposeOptions DilateOptions
StablehloRngBitGeneratorOptions ReduceWindowOptions StableHLOCompositeOptions
StablehloShiftLeftOptions StablehloCaseOptions
""".split()),
}

# -- tables ----------------------------------------------------------------------

_AF = "i8@ActivationFunctionType"
_TT = "i8@TensorType"

_SCHEMA = f"""
CustomQuantization: custom:[u8]
BlockwiseQuantization: scales:i32 zero_points:i32 block_size:i32 block_shape:[i32]
MultiAxisQuantization: scales:i32 zero_points:i32 block_size:i32 quantized_dimensions:[i32]
QuantizationParameters: min:[f32] max:[f32] scale:[f32] zero_point:[i64]
    details:QuantizationDetails quantized_dimension:i32
Int32Vector: values:[i32]
Uint16Vector: values:[u16]
Uint8Vector: values:[u8]
DimensionMetadata: format:i8@DimensionType dense_size:i32
    array_segments:SparseIndexVector array_indices:SparseIndexVector
SparsityParameters: traversal_order:[i32] block_map:[i32] dim_metadata:[DimensionMetadata]
VariantSubType: shape:[i32] type:{_TT} has_rank:bool
Tensor: shape:[i32] type:{_TT} buffer:u32 name:str quantization:QuantizationParameters
    is_variable:bool sparsity:SparsityParameters shape_signature:[i32] has_rank:bool
    variant_tensors:[VariantSubType] external_buffer:u32

StablehloGatherOptions: offset_dims:[i64] collapsed_slice_dims:[i64] start_index_map:[i64]
    index_vector_dim:i64 slice_sizes:[i64] indices_are_sorted:bool
StablehloTransposeOptions: permutation:[i64]
StablehloDotGeneralOptions: lhs_batching_dimensions:[i64] rhs_batching_dimensions:[i64]
    lhs_contracting_dimensions:[i64] rhs_contracting_dimensions:[i64]
    precision_config:[u32@StablehloPrecisionConfig]
StablehloReduceWindowOptions: window_dimensions:[i64] window_strides:[i64]
    base_dilations:[i64] window_dilations:[i64] padding:[i64] body_subgraph_index:i32
StablehloWhileOptions: cond_subgraph_index:i32 body_subgraph_index:i32
StablehloSortOptions: dimension:i64 is_stable:bool comparator_subgraph_index:i32
StablehloConcatenateOptions: dimension:i64
StablehloBroadcastInDimOptions: broadcast_dimensions:[i64]
StablehloCompareOptions: comparison_direction:u32@StablehloComparisonDirection
    compare_type:u32@StablehloComparisonType
StablehloDynamicSliceOptions: slice_sizes:[i64]
StablehloPadOptions: edge_padding_low:[i64] edge_padding_high:[i64] interior_padding:[i64]
StablehloIotaOptions: iota_dimension:i64
StablehloCustomCallOptions: call_target_name:str has_side_effect:bool backend_config:str
    api_version:i32 called_computations:[i32] custom_attributes:[u8]
StablehloReduceOptions: dimensions:[i64] body_subgraph_index:i32
StablehloSliceOptions: start_indices:[i64] limit_indices:[i64] strides:[i64]
StablehloConvolutionOptions: window_strides:[i64] padding:[i64] lhs_dilation:[i64]
    rhs_dilation:[i64] window_reversal:[bool] input_batch_dimension:i64
    input_feature_dimension:i64 input_spatial_dimensions:[i64]
    kernel_input_feature_dimension:i64 kernel_output_feature_dimension:i64
    kernel_spatial_dimensions:[i64] output_batch_dimension:i64 output_feature_dimension:i64
    output_spatial_dimensions:[i64] feature_group_count:i64 batch_group_count:i64
    precision_config:[u32@StablehloPrecisionConfig]
StablehloScatterOptions: indices_are_sorted:bool update_window_dims:[i64]
    inserted_window_dims:[i64] scatter_dims_to_operand_dims:[i64] index_vector_dim:i64
    unique_indices:bool update_computation_subgraph_index:i32
StablehloCaseOptions: branch_subgraph_indices:[i32]
StablehloRngBitGeneratorOptions: algorithm:i8@RngAlgorithm

Conv2DOptions: padding:i8@Padding stride_w:i32 stride_h:i32 fused_activation_function:{_AF}
    dilation_w_factor:i32=1 dilation_h_factor:i32=1 quantized_bias_type:{_TT}
Conv3DOptions: padding:i8@Padding stride_d:i32 stride_w:i32 stride_h:i32
    fused_activation_function:{_AF} dilation_d_factor:i32=1 dilation_w_factor:i32=1
    dilation_h_factor:i32=1
Pool2DOptions: padding:i8@Padding stride_w:i32 stride_h:i32 filter_width:i32
    filter_height:i32 fused_activation_function:{_AF}
DepthwiseConv2DOptions: padding:i8@Padding stride_w:i32 stride_h:i32 depth_multiplier:i32
    fused_activation_function:{_AF} dilation_w_factor:i32=1 dilation_h_factor:i32=1
ConcatEmbeddingsOptions: num_channels:i32 num_columns_per_channel:[i32]
    embedding_dim_per_channel:[i32]
LSHProjectionOptions: type:i8@LSHProjectionType
SVDFOptions: rank:i32 fused_activation_function:{_AF} asymmetric_quantize_inputs:bool
RNNOptions: fused_activation_function:{_AF} asymmetric_quantize_inputs:bool
SequenceRNNOptions: time_major:bool fused_activation_function:{_AF}
    asymmetric_quantize_inputs:bool
BidirectionalSequenceRNNOptions: time_major:bool fused_activation_function:{_AF}
    merge_outputs:bool asymmetric_quantize_inputs:bool
FullyConnectedOptions: fused_activation_function:{_AF}
    weights_format:i8@FullyConnectedOptionsWeightsFormat keep_num_dims:bool
    asymmetric_quantize_inputs:bool quantized_bias_type:{_TT} quant_spec:[u8]
SoftmaxOptions: beta:f32
ConcatenationOptions: axis:i32 fused_activation_function:{_AF}
AddOptions: fused_activation_function:{_AF} pot_scale_int16:bool=1
MulOptions: fused_activation_function:{_AF}
L2NormOptions: fused_activation_function:{_AF}
LocalResponseNormalizationOptions: radius:i32 bias:f32 alpha:f32 beta:f32
LSTMOptions: fused_activation_function:{_AF} cell_clip:f32 proj_clip:f32
    kernel_type:i8@LSTMKernelType asymmetric_quantize_inputs:bool
UnidirectionalSequenceLSTMOptions: fused_activation_function:{_AF} cell_clip:f32
    proj_clip:f32 time_major:bool asymmetric_quantize_inputs:bool
    diagonal_recurrent_tensors:bool
BidirectionalSequenceLSTMOptions: fused_activation_function:{_AF} cell_clip:f32
    proj_clip:f32 merge_outputs:bool time_major:bool=1 asymmetric_quantize_inputs:bool
ResizeBilinearOptions: new_height:i32 new_width:i32 align_corners:bool half_pixel_centers:bool
ResizeNearestNeighborOptions: align_corners:bool half_pixel_centers:bool
CallOptions: subgraph:u32
PadOptions:
PadV2Options:
ReshapeOptions: new_shape:[i32]
SpaceToBatchNDOptions:
BatchToSpaceNDOptions:
SkipGramOptions: ngram_size:i32 max_skip_size:i32 include_all_ngrams:bool
SpaceToDepthOptions: block_size:i32
DepthToSpaceOptions: block_size:i32
SubOptions: fused_activation_function:{_AF} pot_scale_int16:bool=1
DivOptions: fused_activation_function:{_AF}
TopKV2Options:
EmbeddingLookupSparseOptions: combiner:i8@CombinerType
GatherOptions: axis:i32 batch_dims:i32
TransposeOptions:
ExpOptions:
CosOptions:
ReducerOptions: keep_dims:bool
SqueezeOptions: squeeze_dims:[i32]
SplitOptions: num_splits:i32
SplitVOptions: num_splits:i32
StridedSliceOptions: begin_mask:i32 end_mask:i32 ellipsis_mask:i32 new_axis_mask:i32
    shrink_axis_mask:i32 offset:bool
LogSoftmaxOptions:
CastOptions: in_data_type:{_TT} out_data_type:{_TT}
DequantizeOptions:
MaximumMinimumOptions:
TileOptions:
ArgMaxOptions: output_type:{_TT}
ArgMinOptions: output_type:{_TT}
GreaterOptions:
GreaterEqualOptions:
LessOptions:
LessEqualOptions:
NegOptions:
SelectOptions:
SliceOptions:
TransposeConvOptions: padding:i8@Padding stride_w:i32 stride_h:i32
    fused_activation_function:{_AF} quantized_bias_type:{_TT}
ExpandDimsOptions:
SparseToDenseOptions: validate_indices:bool
EqualOptions:
NotEqualOptions:
ShapeOptions: out_type:{_TT}
RankOptions:
PowOptions:
FakeQuantOptions: min:f32 max:f32 num_bits:i32 narrow_range:bool
PackOptions: values_count:i32 axis:i32
LogicalOrOptions:
OneHotOptions: axis:i32
AbsOptions:
HardSwishOptions:
LogicalAndOptions:
LogicalNotOptions:
UnpackOptions: num:i32 axis:i32
FloorDivOptions:
SquareOptions:
ZerosLikeOptions:
FillOptions:
FloorModOptions:
RangeOptions:
LeakyReluOptions: alpha:f32
SquaredDifferenceOptions:
MirrorPadOptions: mode:i8@MirrorPadMode
UniqueOptions: idx_out_type:{_TT}=2
ReverseV2Options:
AddNOptions:
GatherNdOptions:
WhereOptions:
ReverseSequenceOptions: seq_dim:i32 batch_dim:i32
MatrixDiagOptions:
QuantizeOptions:
MatrixSetDiagOptions:
IfOptions: then_subgraph_index:i32 else_subgraph_index:i32
CallOnceOptions: init_subgraph_index:i32
WhileOptions: cond_subgraph_index:i32 body_subgraph_index:i32
NonMaxSuppressionV4Options:
NonMaxSuppressionV5Options:
ScatterNdOptions:
SelectV2Options:
DensifyOptions:
SegmentSumOptions:
BatchMatMulOptions: adj_x:bool adj_y:bool asymmetric_quantize_inputs:bool
CumsumOptions: exclusive:bool reverse:bool
BroadcastToOptions:
Rfft2dOptions:
HashtableOptions: table_id:i32 key_dtype:{_TT} value_dtype:{_TT}
HashtableFindOptions:
HashtableImportOptions:
HashtableSizeOptions:
VarHandleOptions: container:str shared_name:str
ReadVariableOptions:
AssignVariableOptions:
RandomOptions: seed:i64 seed2:i64
BucketizeOptions: boundaries:[f32]
GeluOptions: approximate:bool
DynamicUpdateSliceOptions:
UnsortedSegmentProdOptions:
UnsortedSegmentMaxOptions:
UnsortedSegmentSumOptions:
ATan2Options:
UnsortedSegmentMinOptions:
SignOptions:
BitcastOptions:
BitwiseXorOptions:
RightShiftOptions:
DilateOptions:
ReduceWindowOptions: reduce_function:i32@ReduceWindowFunction
StableHLOCompositeOptions: name:str decomposition_subgraph_index:i32
    composite_attributes:[u8] composite_attributes_format:i8@CustomOptionsFormat version:i32
StablehloShiftLeftOptions:

OperatorCode: deprecated_builtin_code:i8 custom_code:str version:i32=1
    builtin_code:i32@BuiltinOperator
Operator: opcode_index:u32 inputs:[i32] outputs:[i32] builtin_options:BuiltinOptions
    custom_options:[u8] custom_options_format:i8@CustomOptionsFormat
    mutating_variable_inputs:[bool] intermediates:[i32] large_custom_options_offset:u64
    large_custom_options_size:u64 builtin_options_2:BuiltinOptions2
    debug_metadata_index:i32=-1
SubGraph: tensors:[Tensor] inputs:[i32] outputs:[i32] operators:[Operator] name:str
    debug_metadata_index:i32=-1
Buffer: data:[u8] offset:u64 size:u64
ExternalBufferGroup: name:str
ExternalBuffer: id:u32 group:u32 offset:u64 length:u64 packing:str
Metadata: name:str buffer:u32
TensorMap: name:str tensor_index:u32
SignatureDef: inputs:[TensorMap] outputs:[TensorMap] signature_key:str deprecated_tag:str
    subgraph_index:u32
Model: version:u32 operator_codes:[OperatorCode] subgraphs:[SubGraph] description:str
    buffers:[Buffer] metadata_buffer:[i32] metadata:[Metadata] signature_defs:[SignatureDef]
    external_buffer_groups:[ExternalBufferGroup] external_buffers:[ExternalBuffer]

Environment: tensorflow_version:str api_version:u32 model_type:i32@ModelType model_hash:u64
SparsityBlockSize: values:[u32]
ConversionOptions: model_optimization_modes:[i32@ModelOptimizationMode]
    allow_custom_ops:bool enable_select_tf_ops:bool force_select_tf_ops:bool
    sparsity_block_sizes:[SparsityBlockSize]
ConversionMetadata: environment:Environment options:ConversionOptions
"""

SCALAR_KINDS = frozenset("bool i8 u8 i16 u16 i32 u32 i64 u64 f32 f64".split())


@dataclass(frozen=True)
class Field:
    """One field of a table.

    ``kind`` is one of ``scalar``, ``string``, ``table``, ``union``,
    ``vector`` (of scalars), ``vector_string`` or ``vector_table``; ``elem`` is
    the scalar kind or the table/union name.  A union's ``slot`` is its value
    slot; its type byte sits in ``slot - 1``.
    """

    name: str
    slot: int
    kind: str
    elem: str
    enum: str | None = None
    default: float | int | None = None


@dataclass(frozen=True)
class TableDef:
    name: str
    fields: tuple[Field, ...]

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")

    def slot(self, name: str) -> int:
        return self.field(name).slot


def parse_tables(text: str, unions: "dict[str, tuple[str, ...]] | None" = None
                 ) -> dict[str, TableDef]:
    """Parse table lines in the notation above (used for this schema and for the
    other flatbuffers found inside models: conversion, support and compression
    metadata)."""
    unions = UNIONS if unions is None else {**UNIONS, **unions}
    lines: list[str] = []
    for raw in text.strip().splitlines():
        if not raw.strip():
            continue
        if raw[0].isspace():
            lines[-1] += " " + raw.strip()
        else:
            lines.append(raw.strip())
    tables: dict[str, TableDef] = {}
    for line in lines:
        name, _, body = line.partition(":")
        fields = []
        slot = 0
        for spec in body.split():
            fname, _, ftype = spec.partition(":")
            default = None
            if "=" in ftype:
                ftype, _, d = ftype.partition("=")
                default = int(d)
            vector = ftype.startswith("[")
            ftype = ftype.strip("[]")
            enum = None
            if "@" in ftype:
                ftype, _, enum = ftype.partition("@")
            base = ftype
            if base in SCALAR_KINDS:
                kind = "vector" if vector else "scalar"
                if default is None and not vector:
                    default = 0
            elif base == "str":
                kind = "vector_string" if vector else "string"
            elif base in unions:
                assert not vector, spec
                kind = "union"
                slot += 1  # the type byte takes the slot before the value
            else:
                kind = "vector_table" if vector else "table"
            fields.append(Field(fname, slot, kind, base, enum, default))
            slot += 1
        tables[name] = TableDef(name, tuple(fields))
    for t in tables.values():  # every referenced table is declared
        for f in t.fields:
            if f.kind in ("table", "vector_table"):
                assert f.elem in tables, (t.name, f.name)
    return tables


TABLES: dict[str, TableDef] = parse_tables(_SCHEMA)
for _members in UNIONS.values():
    for _m in _members:
        assert _m in TABLES, _m


def slots(table: str, *names: str) -> tuple[int, ...]:
    """Slot numbers of fields of ``table``, in the order asked."""
    t = TABLES[table]
    return tuple(t.slot(n) for n in names)


def enum_name(enum: str, value: int) -> str:
    """The name of an enum value, or ``"<value>"`` for one the schema does not know."""
    return ENUMS[enum].get(value, f"<{value}>")


def enum_value(enum: str, name: str) -> int:
    """The value of a named enum member (KeyError for a name the schema lacks)."""
    for value, n in ENUMS[enum].items():
        if n == name:
            return value
    raise KeyError(f"{enum} has no member {name!r}")


def union_code(union: str, member: str) -> int:
    """The type code of a union member (0 is NONE, members count from 1)."""
    return UNIONS[union].index(member) + 1


def union_member(union: str, code: int) -> "str | None":
    """The member table of a union type code: None for 0 (NONE), ``"<code>"`` for a
    code the schema does not know."""
    if code == 0:
        return None
    members = UNIONS[union]
    return members[code - 1] if 0 < code <= len(members) else f"<{code}>"
