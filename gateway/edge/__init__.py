"""gateway/edge"""
