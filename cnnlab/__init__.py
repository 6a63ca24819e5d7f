"""cnnlab: the reference code of the CNN course.

NumPy implementations of every layer the course teaches (`cnnlab.nn`, `cnnlab.shapes`,
`cnnlab.gradcheck`), PyTorch implementations of the architectures (`cnnlab.models`), real data
(`cnnlab.data`), training and plotting helpers, and the grading and instructor tools.
"""

__version__ = "0.1.0"
